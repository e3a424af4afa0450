"""Factories of the test-only app (tests/testapp): owned records for the access rules."""

import factory

from .accounts import UserFactory


class NoteFactory(factory.django.DjangoModelFactory):
    """A test-only owned record (tests/testapp): stands in for customers, deals, ..."""

    class Meta:
        model = "testapp.Note"

    title = factory.Sequence(lambda n: f"记录{n}")
    owner = factory.SubFactory(UserFactory)


class PooledNoteFactory(NoteFactory):
    """A record type whose unowned rows form a public pool (公海), like customers."""

    class Meta:
        model = "testapp.PooledNote"
