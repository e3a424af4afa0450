from django.urls import path

from . import views, views_exports

app_name = "imports"

# Paths with a fixed first part (exports/, templates/) come before "<job_id>/".
urlpatterns = [
    path("", views.index, name="index"),
    path("templates/<str:template_id>/delete/", views.delete_template, name="delete_template"),
    path("exports/", views_exports.export_list, name="export_list"),
    path("exports/<str:job_id>/", views_exports.export_job, name="export_job"),
    path("exports/<str:job_id>/progress/", views_exports.export_progress, name="export_progress"),
    path("exports/<str:job_id>/download/", views_exports.export_download, name="export_download"),
    path("<str:job_id>/", views.job_page, name="job"),
    path("<str:job_id>/preview/", views.preview, name="preview"),
    path("<str:job_id>/start/", views.start, name="start"),
    path("<str:job_id>/progress/", views.progress, name="progress"),
    path("<str:job_id>/undo/", views.undo_page, name="undo"),
    path("<str:job_id>/file/", views.download_file, name="file"),
    path("<str:job_id>/errors/", views.download_errors, name="errors"),
]
