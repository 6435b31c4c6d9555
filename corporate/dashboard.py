"""Panels on the dashboard. Each app registers its own, so the project package depends on none of them.

from corporate.dashboard import panel

@panel(order=10)
def my_panel(request):
    return {"template": "myapp/_dashboard.html", "items": [...]}  # or None to show nothing
"""

_PANELS = []


def panel(order=50):
    def register(func):
        _PANELS.append((order, func))
        _PANELS.sort(key=lambda item: item[0])
        return func

    return register


def panels_for(request):
    shown = []
    for _, func in _PANELS:
        context = func(request)
        if context:
            shown.append(context)
    return shown
