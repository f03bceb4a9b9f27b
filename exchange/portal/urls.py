from django.contrib.auth import views as auth_views
from django.urls import path

from exchange.portal import (
    agent_views,
    buy_views,
    dashboard_views,
    money_views,
    studio_views,
    trace_views,
    views,
)

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("get-the-agent/", agent_views.agent_page, name="agent"),
    path("get-the-agent/<str:filename>", agent_views.agent_download, name="agent-download"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("works/<str:work_id>/", views.work_detail, name="work-detail"),
    path("works/<str:work_id>/buy/", buy_views.buy, name="work-buy"),
    path("studio/works/", views.my_works, name="my-works"),
    path("studio/works/new/", views.work_register, name="work-register"),
    path("studio/works/<str:work_id>/edit/", views.work_edit, name="work-edit"),
    path("studio/sales/", studio_views.sales, name="sales"),
    path("studio/sales/<str:table>.csv", studio_views.sales_csv, name="sales-csv"),
    path("studio/trace/", trace_views.trace, name="trace"),
    path("studio/trace/<str:report_id>/", trace_views.trace_report, name="trace-report"),
    path("wallet/", money_views.wallet, name="wallet"),
    path("wallet/topup/", money_views.wallet_topup, name="wallet-topup"),
    path("wallet/payout/", money_views.wallet_payout, name="wallet-payout"),
    path("statements/<str:period>/", money_views.statement, name="statement"),
    path("purchases/", buy_views.library, name="purchases"),
    path("devices/<str:device_id>/revoke/", buy_views.device_revoke, name="device-revoke"),
    path("purchases/<str:purchase_id>/invoice/", money_views.invoice, name="invoice"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/payouts/<str:payout_id>/retry/", dashboard_views.payout_retry,
         name="payout-retry"),
]
