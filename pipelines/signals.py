"""Events of the sales process, sent after the transaction commits; automation and
integrations subscribe (crm and pipelines never import them)."""

from django.dispatch import Signal

# sender: the record's model; record, from_stage, to_stage, by, history
stage_changed = Signal()
# sender: Lead; lead, customer, contact, deal, by
lead_converted = Signal()
