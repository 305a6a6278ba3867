"""PostgreSQL online store: a conditional upsert that never replaces a newer value, rows in lock order."""

from __future__ import annotations

from typing import Any

from mlops_provider.core.features import compat
from mlops_provider.core.features.guards.base import WriteGuard


class PostgresConditionalUpsert(WriteGuard):
    strategy = "conditional-upsert"
    description = (
        "PostgreSQL upsert that replaces a stored value only when the new event timestamp is equal or newer "
        "(ON CONFLICT ... DO UPDATE ... WHERE EXCLUDED.event_ts >= event_ts), rows in key order so that "
        "concurrent slices cannot deadlock"
    )

    def write(self, config: Any, table: Any, data: list, progress: Any) -> None:
        from psycopg import sql

        table_name = compat.online_table_name(config, table)
        with compat.sql_connection(self.online_store, config) as conn, conn.cursor() as cur:
            with_num = compat.postgres_table_has_value_num(self.online_store, cur, table_name, config)
            columns = compat.online_table_columns(with_num)
            target = sql.Identifier(table_name)
            statement = sql.SQL(
                "INSERT INTO {table} ({columns}) VALUES ({values}) "
                "ON CONFLICT (entity_key, feature_name) DO UPDATE SET {updates} "
                "WHERE {table}.event_ts IS NULL OR EXCLUDED.event_ts >= {table}.event_ts"
            ).format(
                table=target,
                columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                values=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
                updates=sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns[2:]
                ),
            )
            rows = list(compat.encoded_online_rows(config, data, with_num))
            rows.sort(key=lambda row: (row[0], row[1]))  # one lock order for every writer: no deadlocks
            cur.executemany(statement, rows)
            written = cur.rowcount
            conn.commit()
        self._count(table, data, written)
