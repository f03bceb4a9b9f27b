from django.contrib.auth import views as auth_views
from django.urls import path

from exchange.portal import money_views, trace_views, views

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
    path("studio/sales/", money_views.sales, name="sales"),
    path("studio/trace/", trace_views.trace, name="trace"),
    path("studio/trace/<str:report_id>/", trace_views.trace_report, name="trace-report"),
    path("wallet/", money_views.wallet, name="wallet"),
    path("wallet/topup/", money_views.wallet_topup, name="wallet-topup"),
    path("wallet/payout/", money_views.wallet_payout, name="wallet-payout"),
    path("statements/<str:period>/", money_views.statement, name="statement"),
    path("purchases/", money_views.purchases, name="purchases"),
    path("purchases/<str:purchase_id>/invoice/", money_views.invoice, name="invoice"),
    path("dashboard/", money_views.dashboard, name="dashboard"),
]
