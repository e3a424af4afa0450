from django.urls import path

from . import views_board

app_name = "board"

urlpatterns = [
    path("", views_board.index, name="index"),
    path("<int:pk>/board/", views_board.board, name="board"),
    path("<int:pk>/board/stages/<int:stage_id>/", views_board.column, name="column"),
    path("<int:pk>/board/move/", views_board.move, name="move"),
    path("<int:pk>/board/undo/", views_board.undo, name="undo"),
]
