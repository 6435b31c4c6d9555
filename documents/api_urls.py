from rest_framework.routers import SimpleRouter

from documents.api import DocumentViewSet

router = SimpleRouter()
router.register("documents", DocumentViewSet, basename="api-document")
urlpatterns = router.urls
