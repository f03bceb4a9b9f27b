from django.contrib.auth import views as auth_views
from django.urls import path

from exchange.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("works/<str:work_id>/", views.work_detail, name="work-detail"),
    path("studio/works/", views.my_works, name="my-works"),
    path("studio/works/new/", views.work_register, name="work-register"),
    path("studio/works/<str:work_id>/edit/", views.work_edit, name="work-edit"),
]
