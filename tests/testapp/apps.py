import os

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"

    def ready(self):
        if os.environ.get("CRM_TEST_EVENT_SUBSCRIBER"):
            from crm import events

            from .subscriber import SUBSCRIBER

            events.register_subscriber(SUBSCRIBER)
