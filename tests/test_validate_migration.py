"""Migration 0003 (validation tables) is all or nothing on both databases."""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from gettok import db
from tests.conftest import BACKENDS, create_postgres_database, drop_postgres_database


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    if request.param == "postgres":
        url = create_postgres_database()
        yield url
        drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'm.db'}"
        db.get_engine.cache_clear()


def test_a_failing_validation_migration_leaves_nothing_behind(empty_url):
    before = ScriptDirectory.from_config(db.alembic_config(empty_url)).get_revision("0003")
    db.upgrade(empty_url, before.down_revision)
    with db.get_engine(empty_url).begin() as connection:  # in the way of the last table
        connection.execute(text("CREATE TABLE validation_scores (id INTEGER PRIMARY KEY)"))

    with pytest.raises(Exception, match="validation_scores"):
        db.upgrade(empty_url, "0003")

    db.get_engine.cache_clear()
    tables = set(inspect(db.get_engine(empty_url)).get_table_names())
    assert not {"validation_samples", "validation_items", "validation_codes"} & tables
    assert db.current_revision(empty_url) == before.down_revision
