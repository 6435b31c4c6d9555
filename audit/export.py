"""The audit log as CSV or JSON: the pages' export and `manage.py audit_log` write the same columns."""

import csv
import json

COLUMNS = [
    "time",
    "actor",
    "action",
    "workspace",
    "object_type",
    "object_id",
    "object",
    "changes",
    "details",
    "address",
]


def record_of(event):
    """One event as a dict of the export's columns (changes and details as JSON values)."""
    return {
        "time": event.created_at.isoformat(),
        "actor": event.actor_email,
        "action": event.action,
        "workspace": event.workspace_slug,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object": event.object_repr,
        "changes": event.changes,
        "details": event.details,
        "address": event.ip_address or "",
    }


def spreadsheet_text(value):
    """A CSV cell's text that a spreadsheet shows as text, never runs as a formula (a leading quote when needed)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _cell(value):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    return spreadsheet_text(value)


class _Echo:
    def write(self, value):
        return value


def csv_lines(events):
    """The events as CSV text, line by line; read in chunks, so a long export never sits in memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for event in events.iterator(chunk_size=2000):
        record = record_of(event)
        yield writer.writerow(_cell(record[column]) for column in COLUMNS)


def json_lines(events):
    """The events as one JSON array, written piece by piece."""
    yield "["
    for index, event in enumerate(events.iterator(chunk_size=2000)):
        yield ("," if index else "") + "\n" + json.dumps(record_of(event), ensure_ascii=False, sort_keys=True)
    yield "\n]\n"
