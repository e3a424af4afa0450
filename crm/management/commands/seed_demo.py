"""Load the demo company. Safe to run again: it converges on the same data."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_PASSWORD, seed_organisation


class Command(BaseCommand):
    help = "Create or update the demo company: departments, roles and one user per role."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help=f"Set every demo user's password back to {DEMO_PASSWORD!r}.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (demo users have a published password).",
        )

    def handle(self, *args, reset_passwords=False, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a published password; "
                "with DEBUG off, pass --force if this really is a demo system."
            )
        rows = seed_organisation(reset_passwords=reset_passwords)
        self.stdout.write(self.style.SUCCESS("Demo company ready. Sign in at /accounts/login/ as:"))
        for username, name, role, password in rows:
            self.stdout.write(f"  {username:<10} {password:<18} {name}（{role}）")
