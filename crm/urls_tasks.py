from django.urls import path

from .views import exports, tasks, tasks_calendar

app_name = "tasks"

urlpatterns = [
    path("", tasks.TaskListView.as_view(), name="list"),
    path("export/", exports.TaskExportView.as_view(), name="export"),
    path("calendar/", tasks_calendar.TaskCalendarView.as_view(), name="calendar"),
    path("new/", tasks.TaskCreateView.as_view(), name="create"),
    path("<int:pk>/", tasks.TaskDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", tasks.TaskUpdateView.as_view(), name="edit"),
    path("<int:pk>/complete/", tasks.complete, name="complete"),
    path("<int:pk>/reopen/", tasks.reopen, name="reopen"),
    path("<int:pk>/outcome/", tasks.outcome, name="outcome"),
]
