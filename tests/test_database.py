import pytest
from django.db import connection


@pytest.mark.django_db
def test_postgresql_database_has_a_utf8_ctype():
    """pg_trgm finds nothing in Chinese text under LC_CTYPE=C (FACTS.md): fail loudly."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_encoding_to_char(encoding), datctype FROM pg_database "
            "WHERE datname = current_database()"
        )
        encoding, ctype = cursor.fetchone()
    assert encoding == "UTF8"
    assert "utf" in ctype.lower().replace("-", ""), ctype
