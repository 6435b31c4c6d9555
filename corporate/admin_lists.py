"""Admin change lists over tables of millions of rows.

The Django admin counts the rows of a change list twice on every page: the
filtered list (for the paginator) and the whole table (for "N total"). On
PostgreSQL a `COUNT(*)` reads the whole table, hundreds of milliseconds over
millions of messages or passages. `LargeTableAdmin` turns the second count
off and makes the first one cheap, always in one query, so a list costs the
same number of queries whatever its size:

- unfiltered: the planner's row estimate of the table (`pg_class.reltuples`,
  kept by ANALYZE and autovacuum), or the exact count while the table holds
  fewer than `EXACT_UP_TO` rows;
- filtered or searched: the rows counted up to `EXACT_UP_TO` + 1, so paging
  reaches the first ten thousand and the count stops there ("10,001").

Every large list also orders by an indexed column and joins what it shows.

Every change list, ours and the installed apps', is a `CheckedChangeList`
(`install`, from the app's `ready`): a filter in the address whose value the
database cannot take (`?pk__in=99999999999999999999999`, `?created_at__year=-1`)
gets Django's own answer to a bad lookup (the list without its filters, "?e=1")
instead of a server error. Django checks the filters when it builds them, but
such values only fail when the query runs.
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import DataError, connections
from django.utils.functional import cached_property

EXACT_UP_TO = 10_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return super().count
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        if not query.where and not query.combinator and not query.distinct:
            table = connection.ops.quote_name(queryset.model._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT CASE WHEN c.reltuples < %s THEN (SELECT count(*) FROM {table}) "
                    "ELSE c.reltuples::bigint END FROM pg_class c WHERE c.oid = %s::regclass",
                    [EXACT_UP_TO, queryset.model._meta.db_table],
                )
                return int(cursor.fetchone()[0])
        return queryset.order_by()[: EXACT_UP_TO + 1].count()


class LargeTableAdmin(admin.ModelAdmin):
    """A change list over a table that grows without bound (see the module's docstring)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class CheckedChangeList(ChangeList):
    """A change list whose filters the database cannot run is a bad lookup (see the module's docstring)."""

    def get_results(self, request):
        try:
            super().get_results(request)
        except (OverflowError, ValueError, DataError) as exc:
            raise IncorrectLookupParameters(exc) from exc


def _checked_changelist(model_admin, request, **kwargs):
    return CheckedChangeList


def install():
    """Every ModelAdmin's change list is a CheckedChangeList (one that names its own class keeps it)."""
    admin.ModelAdmin.get_changelist = _checked_changelist
