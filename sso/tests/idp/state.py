"""What the tests told the provider, kept in the provider's one process."""

# username -> {"email", "email_verified", "name", "groups"}
USERS = {}
# "id_token": "" or how the next ID tokens are made wrong
MODE = {"id_token": ""}
