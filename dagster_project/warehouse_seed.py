"""A demo warehouse: CRM contacts and bot subscribers with the mess real data has.

Deterministic for a given seed, so the demo prints the same summary every time.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from dagster_project.core.db import load_sql, split_statements

DEMO_START = datetime(2026, 1, 1)
DEMO_END = datetime(2026, 11, 24)


def create_warehouse_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in split_statements(load_sql("warehouse_schema.sql")):
            conn.execute(text(statement))


def create_message_events_table(engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in split_statements(load_sql("message_events_schema.sql")):
            conn.execute(text(statement))


def land_message_events(engine: Engine, events: list[dict]) -> int:
    """Insert eSputnik message events (as the sandbox reports them) into the warehouse."""
    create_message_events_table(engine)
    if events:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO esputnik_message_events (token, message_id, status, reason,"
                    " occurred_at) VALUES (:token, :message_id, :status, :reason, :occurred_at)"
                ),
                events,
            )
    return len(events)


def _phone(rng: random.Random) -> str:
    digits = f"50{rng.randrange(10**7):07d}"
    return rng.choice(
        [
            f"+380{digits}",
            f"+38 (0{digits[:2]}) {digits[2:5]}-{digits[5:7]}-{digits[7:]}",
            f"0{digits}",
            f"380{digits}",
            "12-34",  # not a phone
        ]
    )


def demo_rows(subscribers: int, seed: int = 7) -> tuple[list[dict], list[dict]]:
    """CRM contacts and subscribers: ~60 % linked to CRM, ~8 % blocked, a few broken rows."""
    rng = random.Random(seed)
    span = int((DEMO_END - DEMO_START).total_seconds())
    contacts, subscribers_rows = [], []
    for n in range(subscribers):
        subscribed = DEMO_START + timedelta(seconds=rng.randrange(span))
        customer_id = None
        if rng.random() < 0.6:
            customer_id = f"CUST-{n:06d}" if n % 97 else f'O\'Brien "{n}"; DROP TABLE x;--'
            email = rng.choice([f"user{n}@example.com", f" User{n}@Example.COM ", "broken@", None])
            contacts.append(
                {
                    "customer_id": customer_id,
                    "esputnik_contact_id": 500_000 + n if rng.random() < 0.5 else None,
                    "email": email,
                    "phone": _phone(rng) if rng.random() < 0.7 else None,
                    "updated_at": subscribed.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
        chat_id = str(900_000_000 + n)
        if n % 211 == 0:
            chat_id = "   "
        elif n % 53 == 0:
            chat_id = f"  {chat_id} "
        blocked = rng.random() < 0.08
        row = {
            "chat_id": chat_id,
            "customer_id": customer_id,
            "phone": _phone(rng) if rng.random() < 0.75 else None,
            "status": "blocked" if blocked else "active",
            "subscribed_at": subscribed.strftime("%Y-%m-%d %H:%M:%S"),
            "status_changed_at": (subscribed + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
            if blocked
            else None,
        }
        subscribers_rows.append(row)
        if n % 101 == 0:  # the same chat seen twice
            subscribers_rows.append(dict(row, customer_id=None))
    return contacts, subscribers_rows


def seed_warehouse(engine: Engine, subscribers: int = 2_000, seed: int = 7) -> tuple[int, int]:
    """Replace the demo tables' contents; return (contacts, subscriber rows)."""
    create_warehouse_schema(engine)
    contacts, subscriber_rows = demo_rows(subscribers, seed)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM telegram_subscribers"))
        conn.execute(text("DELETE FROM crm_contacts"))
        conn.execute(
            text(
                "INSERT INTO crm_contacts (customer_id, esputnik_contact_id, email, phone,"
                " updated_at) VALUES (:customer_id, :esputnik_contact_id, :email, :phone,"
                " :updated_at)"
            ),
            contacts,
        )
        conn.execute(
            text(
                "INSERT INTO telegram_subscribers (chat_id, customer_id, phone, status,"
                " subscribed_at, status_changed_at) VALUES (:chat_id, :customer_id, :phone,"
                " :status, :subscribed_at, :status_changed_at)"
            ),
            subscriber_rows,
        )
    return len(contacts), len(subscriber_rows)
