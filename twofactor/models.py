from django.db import models
from django.db.models import Q


class Requirement(models.TextChoices):
    NONE = "none", "Optional for everyone"
    STAFF = "staff", "Required for staff (admins)"
    ALL = "all", "Required for everyone"


class TwoFactorPolicy(models.Model):
    """Who must use a second factor: one row, changed in the admin or with `manage.py require_2fa`.

    TWO_FACTOR_REQUIRED in the environment is a floor: the stricter of the two applies.
    """

    required = models.CharField(max_length=8, choices=Requirement.choices, default=Requirement.NONE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "two-factor policy"
        verbose_name_plural = "two-factor policy"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="%(app_label)s_%(class)s_one_row")]

    def __str__(self):
        return self.get_required_display()

    @classmethod
    def current(cls):
        return cls.objects.get_or_create(pk=1)[0]
