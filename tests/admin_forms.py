"""What a browser posts for an admin add/change page as rendered (inlines included), so
admin tests change only what they mean to."""


def _value_for_post(value):
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def form_data(form) -> dict:
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if value is None or value is False:
            continue
        data[form.add_prefix(name)] = "on" if value is True else _value_for_post(value)
    return data


def admin_page_data(response) -> dict:
    data = form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    return data


def admin_errors(response) -> dict[str, list[str]]:
    """Field errors of the main form, and "__all__"/"inlines" errors."""
    if response.status_code != 200 or "adminform" not in response.context:
        return {}
    errors = {k: [str(e) for e in v] for k, v in response.context["adminform"].form.errors.items()}
    inline_errors = []
    for inline in response.context["inline_admin_formsets"]:
        inline_errors += [str(e) for e in inline.formset.non_form_errors()]
        for form_errors in inline.formset.errors:
            for messages in form_errors.values():
                inline_errors += [str(e) for e in messages]
    if inline_errors:
        errors["inlines"] = inline_errors
    return errors
