import json
import time

from jwcrypto import jwk, jwt
from oauth2_provider.oauth2_validators import OAuth2Validator

from sso.tests.idp import state


class Validator(OAuth2Validator):
    # Every claim below goes out whatever the scopes (the groups claim has no standard scope).
    oidc_claim_scope = None

    def get_additional_claims(self, request):
        profile = state.USERS.get(request.user.username, {})
        claims = {
            "email": profile.get("email", request.user.username),
            "email_verified": profile.get("email_verified", True),
            "name": profile.get("name", ""),
            "groups": profile.get("groups", []),
        }
        if claims["email_verified"] is None:  # a provider that never says (Microsoft Entra ID)
            del claims["email_verified"]
        return claims

    def finalize_id_token(self, id_token, token, token_handler, request):
        signed = super().finalize_id_token(id_token, token, token_handler, request)
        mode = state.MODE.get("id_token")
        if not mode:
            return signed
        key = request.client.jwk_key
        claims = json.loads(jwt.JWT(jwt=signed, key=key).claims)
        if mode == "wrong_nonce":
            claims["nonce"] = "not-the-nonce-that-was-sent"
        elif mode == "expired":
            claims["iat"], claims["exp"] = int(time.time()) - 3600, int(time.time()) - 600
        elif mode == "wrong_issuer":
            claims["iss"] = "https://another-issuer.example"
        elif mode == "wrong_audience":
            claims["aud"] = "another-client"
        header = {"typ": "JWT", "alg": "RS256", "kid": key.thumbprint()}
        signing_key = jwk.JWK.generate(kty="RSA", size=2048) if mode == "wrong_key" else key
        forged = jwt.JWT(header=json.dumps(header), claims=json.dumps(claims))
        forged.make_signed_token(signing_key)
        return forged.serialize()
