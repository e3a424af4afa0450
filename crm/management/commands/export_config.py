"""Write the configuration (dictionaries, custom fields, roles, and what later apps add)
as JSON: stable order, natural keys, no database ids. See crm.config.transfer."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from crm.config import transfer


class Command(BaseCommand):
    help = "Export the configuration as JSON (to import_config on another system)."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output.")

    def handle(self, *args, output=None, **options):
        text = transfer.dumps(transfer.export_config())
        if not output or output == "-":
            self.stdout.write(text, ending="")
            return
        Path(output).write_text(text, encoding="utf-8")
        self.stderr.write(_("Configuration written to %(path)s.") % {"path": output})
