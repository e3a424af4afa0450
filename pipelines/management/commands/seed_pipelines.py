"""`manage.py seed_pipelines`: demo leads and deals in every stage (after `seed_demo`).
Running it again adds nothing."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.demo import DemoUsersMissing, seed_pipeline_records


class Command(BaseCommand):
    help = (
        "Add demo leads and deals in every stage of the pipelines, owned by the demo reps, "
        "on the demo customers (run seed_demo first)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (demo data)."
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_pipelines adds demo records; with DEBUG off, pass --force if this "
                "really is a demo system."
            )
        try:
            counts = seed_pipeline_records()
        except DemoUsersMissing as exc:
            raise CommandError(f"Demo users missing ({exc}): run seed_demo first.") from exc
        if counts["leads"] or counts["deals"]:
            self.stdout.write(
                self.style.SUCCESS(
                    "Demo pipelines filled: {leads} leads ({converted} converted), "
                    "{deals} deals.".format(**counts)
                )
            )
        else:
            self.stdout.write("Demo leads and deals already present: nothing added.")
