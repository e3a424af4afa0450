"""Create or update the configuration from an export_config file, by natural key, in
one transaction; `--dry-run` shows what would change and changes nothing. A file with
any problem is refused whole. See crm.config.transfer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from crm.config import transfer
from crm.config.log import field_label, model_for_label


def _text(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


class Command(BaseCommand):
    help = "Import a configuration file made by export_config (idempotent, by natural key)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file, or - for standard input.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would be created and changed; change nothing.",
        )
        parser.add_argument(
            "--user", help="Username the configuration log records as having made the changes."
        )

    def handle(self, *args, file, dry_run=False, user=None, verbosity=1, **options):
        data = self.read(file)
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(_("No user “%(name)s”.") % {"name": user})
        try:
            result = transfer.import_config(data, dry_run=dry_run, user=actor)
        except transfer.ConfigFileError as exc:
            lines = [_("The file was refused; nothing was changed:")]
            lines += [f"  - {message}" for message in exc.messages]
            raise CommandError("\n".join(lines)) from None
        self.report(result, verbosity)

    def read(self, file: str):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": file, "error": exc}
            ) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(
                _("%(file)s is not valid JSON (line %(line)s, column %(column)s): %(error)s")
                % {"file": file, "line": exc.lineno, "column": exc.colno, "error": exc.msg}
            ) from None

    def report(self, result: transfer.ImportResult, verbosity: int) -> None:
        current = None
        for change in result.changes:
            if change.section != current:
                current = change.section
                self.stdout.write(self.style.MIGRATE_HEADING(change.section))
            if change.action == "create":
                verb = (
                    pgettext("config import", "would create")
                    if result.dry_run
                    else pgettext("config import", "created")
                )
                self.stdout.write(f"  + {verb} {change.key}")
            else:
                verb = (
                    pgettext("config import", "would change")
                    if result.dry_run
                    else pgettext("config import", "changed")
                )
                self.stdout.write(f"  ~ {verb} {change.key}")
            if change.action == "update" or verbosity > 1:
                model = model_for_label(change.model)
                for item in change.changes:
                    label = field_label(model, item["field"])
                    self.stdout.write(f"      {label}: {_text(item['old'])} → {_text(item['new'])}")
        if verbosity > 1:
            for section, keys in result.not_in_file.items():
                self.stdout.write(
                    _("Not in the file, left as they are (%(section)s): %(keys)s")
                    % {"section": section, "keys": ", ".join(keys)}
                )
        if not result.changes:
            message = _("No changes: the configuration already matches the file.")
            self.stdout.write(self.style.SUCCESS(message))
            return
        summary = _("%(created)s created, %(updated)s changed, %(unchanged)s unchanged.") % {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
        }
        if result.dry_run:
            summary = _("Dry run, nothing was changed: %(summary)s") % {"summary": summary}
        self.stdout.write(self.style.SUCCESS(summary))
