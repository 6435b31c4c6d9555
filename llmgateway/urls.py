app_name = "llmgateway"
urlpatterns = []
