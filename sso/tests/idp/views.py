import json
import os

from django.contrib.auth.models import User
from django.http import HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_application_model

from sso.tests.idp import state


@csrf_exempt
def control(request):
    if request.headers.get("X-Control-Token") != os.environ["IDP_CONTROL_TOKEN"]:
        return HttpResponseForbidden("no")
    body = json.loads(request.body or b"{}")
    for user in body.get("users", []):
        account, _ = User.objects.get_or_create(username=user["username"])
        account.set_password(user["password"])
        account.save()
        state.USERS[user["username"]] = user
    if "client" in body:
        client = body["client"]
        get_application_model().objects.filter(client_id=client["client_id"]).delete()
        get_application_model().objects.create(
            name="corporate",
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            client_type="confidential",
            authorization_grant_type="authorization-code",
            redirect_uris=" ".join(client["redirect_uris"]),
            post_logout_redirect_uris=" ".join(client.get("post_logout_redirect_uris", [])),
            skip_authorization=True,
            algorithm="RS256",
        )
    if "mode" in body:
        state.MODE["id_token"] = body["mode"]
    return JsonResponse({"ok": True})
