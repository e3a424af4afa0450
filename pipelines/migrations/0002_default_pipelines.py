"""The pipelines every installation starts with (DESIGN "The sales process it models");
admins rename, reorder and add stages in the admin."""

from django.db import migrations

# name, name_en, kind, probability, colour, days, required fields, guide, guide_en
LEAD_STAGES = [
    ("已收到联系方式", "Contact received", "open", 5, "azure", 1, [],
     "24 小时内首次联系，确认对方身份和来意。", "Make first contact within 24 hours; confirm who they are and why they called."),
    ("已指派负责人", "Owner assigned", "open", 10, "blue", 2, [],
     "负责人查看线索来源和已有信息，准备首次沟通。", "The owner reads the source and what is known, and prepares the first call."),
    ("收集线索信息", "Collecting information", "open", 20, "indigo", 5, [],
     "补全公司名称、联系人、电话，判断是否值得跟进。", "Complete company, person and phone; judge whether it is worth pursuing."),
    ("联系决策人", "Reaching the decision maker", "open", 35, "purple", 7, ["company_name"],
     "找到并联系能拍板的人，了解决策流程。", "Find and reach the person who decides; learn how they decide."),
    ("收集需求", "Gathering needs", "open", 50, "pink", 10, ["company_name", "person_name"],
     "了解需求、预算和时间表，记录在跟进中。", "Learn the need, budget and timeline; log them as activities."),
    ("需求已确认", "Need confirmed", "open", 70, "orange", 7, ["company_name", "person_name", "phone"],
     "需求明确后转化为客户并创建商机。", "Once the need is clear, convert the lead into a customer and a deal."),
    ("已转化", "Converted", "won", 100, "green", None, [],
     "已转化为客户，在客户和商机中继续跟进。", "Converted: continue on the customer and the deal."),
    ("无效线索", "Disqualified", "lost", 0, "secondary", None, [],
     "记录丢失原因，便于分析线索质量。", "Record why, so lead quality can be analysed."),
]
DEAL_STAGES = [
    ("意向", "Interest", "open", 10, "azure", 7, [],
     "确认客户的购买意向和大致需求。", "Confirm the customer's intent to buy and the rough need."),
    ("产品介绍", "Product presentation", "open", 20, "blue", 10, ["contact"],
     "向关键联系人介绍产品和方案。", "Present the product and the solution to the key contact."),
    ("产生兴趣", "Interested", "open", 35, "indigo", 14, ["contact"],
     "安排试用或拜访，了解顾虑。", "Arrange a trial or a visit; find out their concerns."),
    ("报价", "Quotation", "open", 50, "purple", 7, ["contact", "amount"],
     "发送正式报价，金额需填写。", "Send the formal quotation; the amount must be filled in."),
    ("评估", "Evaluation", "open", 65, "orange", 14, ["contact", "amount", "expected_close_date"],
     "跟进客户内部评估，处理异议。", "Follow the customer's internal evaluation; handle objections."),
    ("合同", "Contract", "open", 85, "yellow", 10, ["contact", "amount", "expected_close_date"],
     "起草并签订合同，确认付款条件。", "Draft and sign the contract; agree payment terms."),
    ("赢单", "Won", "won", 100, "green", None, ["amount"],
     "恭喜！安排交付和回款。", "Congratulations: arrange delivery and payment."),
    ("输单", "Lost", "lost", 0, "secondary", None, [],
     "记录输单原因，复盘经验。", "Record why it was lost and learn from it."),
]
PIPELINES = [
    ("lead", "线索", "Leads", 10, True, LEAD_STAGES),
    ("deal", "零售", "Retail", 10, True, DEAL_STAGES),
    ("deal", "批发", "Wholesale", 20, False, DEAL_STAGES),
]


def create(apps, schema_editor):
    Pipeline = apps.get_model("pipelines", "Pipeline")
    Stage = apps.get_model("pipelines", "Stage")
    for kind, name, name_en, order, default, stages in PIPELINES:
        pipeline, created = Pipeline.objects.get_or_create(
            kind=kind,
            name=name,
            defaults={"name_en": name_en, "order": order, "is_default": default},
        )
        if not created:
            continue
        for position, (sname, sname_en, skind, prob, color, days, required, guide, guide_en) in (
            enumerate(stages, start=1)
        ):
            Stage.objects.create(
                pipeline=pipeline,
                name=sname,
                name_en=sname_en,
                order=position * 10,
                kind=skind,
                probability=prob,
                color=color,
                time_limit_days=days,
                required_fields=required,
                guide=guide,
                guide_en=guide_en,
            )


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
