"""Account tasks: thin wrappers that call services."""

from datetime import timedelta

from axes.handlers.proxy import AxesProxyHandler
from celery import shared_task
from django.core.management import call_command

from . import services


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def send_security_notice(self, notice_id: int) -> bool:
    try:
        return services.deliver_security_notice(notice_id)
    except OSError as exc:  # SMTP and network errors
        raise self.retry(exc=exc) from exc


@shared_task
def send_pending_security_notices() -> int:
    ids = services.pending_security_notice_ids(older_than=timedelta(minutes=2))
    for notice_id in ids:
        send_security_notice.delay(notice_id)
    return len(ids)


@shared_task
def clear_expired_sessions() -> None:
    call_command("clearsessions")


@shared_task
def clear_old_sign_in_logs() -> None:
    # django-axes keeps a row per sign-in and per failure; a month is enough for an audit.
    AxesProxyHandler.reset_logs(age_days=30)
    AxesProxyHandler.reset_failure_logs(age_days=30)
