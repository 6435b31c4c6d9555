"""Under /api/, an address without its trailing slash is served as the one with it: no redirect.

CommonMiddleware's APPEND_SLASH answers a 301 to an HTML redirect, which a
client follows with a GET: a POST, PUT or PATCH loses its body. API clients
get the slashed address's answer instead (and `/api` the API's JSON 404);
pages keep the redirect.
"""

from django.urls import is_valid_path

API_ROOT = "/api"


class ApiAppendSlashMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(API_ROOT) and not path.endswith("/") and (path == API_ROOT or path[4] == "/"):
            urlconf = getattr(request, "urlconf", None)
            if path == API_ROOT or (not is_valid_path(path, urlconf) and is_valid_path(path + "/", urlconf)):
                request.path_info = path + "/"
                request.path = request.path + "/"
        return self.get_response(request)
