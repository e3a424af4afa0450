from django.contrib.auth.backends import ModelBackend

from .models import User


class UserBackend(ModelBackend):
    """ModelBackend that loads role and department with the user: one query per request."""

    def get_user(self, user_id):
        try:
            user = User._default_manager.select_related("role", "department").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
