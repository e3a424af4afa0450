"""Make an API token from the shell: for CI, a first integration, an admin's script.

    manage.py create_api_token zhangwei --name ci --days 30 --print

prints the token alone on stdout with --print (for `TOKEN=$(...)`), else a sentence
with it. Made by the first active superuser unless --by names someone."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

from ...services import create_token


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="What the token is for.")
        parser.add_argument(
            "--days", type=int, default=None, help="Expires after this many days (default: never)."
        )
        parser.add_argument("--by", default=None, help="Username recorded as its maker.")
        parser.add_argument("--print", action="store_true", help="Print the token alone.")

    def handle(self, *args, username, name, days, by, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if by:
            maker = User.objects.filter(username=by).first()
            if maker is None:
                raise CommandError(f"No user {by!r}.")
        else:
            maker = (
                User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
                or user
            )
        try:
            token, text = create_token(user, name=name, expires_in_days=days, by=maker)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from None
        if options["print"]:
            self.stdout.write(text)
        else:
            self.stdout.write(f"Token {token.name!r} for {user.username} (shown only once): {text}")
