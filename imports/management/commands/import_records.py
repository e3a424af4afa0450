"""`manage.py import_records FILE --type customer [--template NAME] [--owner USER]
[--run-automation] [--dry-run]`: the import of the pages, from the shell, for large
migrations. Without --run-automation the imported records fire no automation rules."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from accounts.models import User
from imports.models import DuplicateStrategy, ImportStatus, OwnerMode
from imports.readers import UnreadableFile
from imports.services import engine, jobs, runner
from imports.specs import import_specs


class Command(BaseCommand):
    help = "Import customers, contacts, leads, deals or follow-ups from a CSV or XLSX file."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--type", required=True, choices=[s.record_type for s in import_specs()]
        )
        parser.add_argument(
            "--as", dest="username", help="Import as this user (default: an admin)."
        )
        parser.add_argument("--template", help="Apply the mapping template of this name.")
        parser.add_argument("--owner", help="Owner of the new records (username).")
        parser.add_argument("--sheet")
        parser.add_argument("--header-row", type=int)
        parser.add_argument(
            "--match", default="", help="Comma-separated fields duplicates are matched on."
        )
        parser.add_argument(
            "--duplicates", choices=DuplicateStrategy.values, default=DuplicateStrategy.SKIP
        )
        parser.add_argument("--all-or-nothing", action="store_true")
        parser.add_argument(
            "--run-automation",
            action="store_true",
            help="Run automation rules on the imported records (off: they fire no rules).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Plan and report; write nothing."
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}")
        user = self._user(options["username"])
        with translation.override(user.language or None), path.open("rb") as handle:
            try:
                job, table = jobs.create_job(
                    file=handle,
                    name=path.name,
                    record_type=options["type"],
                    by=user,
                    sheet=options["sheet"],
                    header_row=options["header_row"],
                )
            except UnreadableFile as exc:
                raise CommandError(str(exc)) from None
            self._configure(job, table, user, options)
            started = time.monotonic()
            result = engine.plan(job, table=table)
            if result.problems:
                raise CommandError("\n".join(result.problems))
            counts = result.counts
            self.stdout.write(
                f"{len(result.rows)} rows: {counts['create']} to create, {counts['update']} "
                f"to update, {counts['skip']} to skip, {counts['error']} with errors "
                f"({time.monotonic() - started:.1f} s)"
            )
            for row in [r for r in result.rows if r.errors][:20]:
                self.stdout.write(f"  row {row.number}: {'; '.join(row.errors)}")
            if options["dry_run"]:
                job.delete()
                return
            runner.queue(job, enqueue=False)
            self._run_with_progress(job)
            job.refresh_from_db()
            elapsed = (job.finished_at - job.started_at).total_seconds() if job.finished_at else 0
            self.stdout.write(
                f"Import #{job.pk} {job.get_status_display()}: {job.created_count} created, "
                f"{job.updated_count} updated, {job.skipped_count} skipped, {job.error_count} "
                f"errors in {elapsed:.1f} s"
            )
            if job.message:
                self.stdout.write(job.message)
            if job.error_report:
                self.stdout.write(f"Error report: {job.error_report.path}")
            if job.status != ImportStatus.DONE:
                raise CommandError(job.message or "The import failed.")

    def _user(self, username: str | None) -> User:
        if username:
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {username}")
            return user
        user = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("No active admin: pass --as USERNAME")
        return user

    def _configure(self, job, table, user, options) -> None:
        if options["template"]:
            template = (
                jobs.templates_for(user, job.record_type).filter(name=options["template"]).first()
            )
            if template is None:
                raise CommandError(f"No template {options['template']!r}")
            jobs.apply_mapping(job, table, by=user, template=template)
        if options["owner"]:
            owner = User.objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user {options['owner']}")
            job.owner_mode, job.owner = OwnerMode.FIXED, owner
        if options["match"]:
            job.duplicate_keys = [k.strip() for k in options["match"].split(",") if k.strip()]
        job.duplicate_strategy = options["duplicates"]
        job.all_or_nothing = options["all_or_nothing"]
        job.run_automation = options["run_automation"]
        job.save()

    def _run_with_progress(self, job) -> None:
        """Run in this process, printing progress from a second thread."""
        done = threading.Event()

        def report():
            while not done.wait(2):
                job.refresh_from_db(fields=["rows_done", "total_rows", "status"])
                if job.total_rows:
                    sys.stderr.write(f"\r{runner.rows_done(job)}/{job.total_rows} rows")
            sys.stderr.write("\n")

        thread = threading.Thread(target=report, daemon=True)
        thread.start()
        try:
            runner.run(job.pk)
        finally:
            done.set()
            thread.join()
