app_name = "assistants"
urlpatterns = []
