from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from .models import Dictionary, DictionaryItem, SavedView, Tag


class DictionaryItemInline(admin.TabularInline):
    model = DictionaryItem
    fields = ("code", "label", "label_en", "order", "color", "is_default", "is_active")
    extra = 0
    ordering = ("order", "id")

    def has_delete_permission(self, request, obj=None):
        # Items are deactivated, never deleted: old records keep pointing at them.
        return False


@admin.register(Dictionary)
class DictionaryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "item_count")
    search_fields = ("name", "code")
    inlines = [DictionaryItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_items=Count("items"))

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("items"), ordering="_items")
    def item_count(self, obj):
        return obj._items


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "color")
    search_fields = ("name",)


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "record_type", "owner", "shared", "created_at")
    list_filter = ("record_type", "shared")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username", "owner__name")
