"""Every endpoint of API version 1."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from exchange.accounts import api_views as accounts
from exchange.catalogue import api_views as catalogue
from exchange.compute_market import api_views as compute
from exchange.ledger import api_views as ledger
from exchange.licensing import api_views as licensing
from exchange.metering import api_views as metering
from exchange.payments import api_views as payments
from exchange.peers import api_views as peers
from exchange.purchases import api_views as purchases
from exchange.tracing import api_views as tracing

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("me/", accounts.MeView.as_view(), name="me"),
    path("auth/tokens/", accounts.TokenListCreateView.as_view(), name="tokens"),
    path("auth/tokens/<int:token_id>/", accounts.TokenRevokeView.as_view(), name="token-revoke"),
    path("works/", catalogue.WorkListCreateView.as_view(), name="works"),
    path("works/<str:work_id>/", catalogue.WorkDetailView.as_view(), name="work-detail"),
    path(
        "works/<str:work_id>/withdraw/", catalogue.WorkWithdrawView.as_view(), name="work-withdraw"
    ),
    path("works/<str:work_id>/preview/", catalogue.WorkPreviewView.as_view(), name="work-preview"),
    path("wallet/", ledger.WalletView.as_view(), name="wallet"),
    path("wallet/topups/", payments.TopUpListCreateView.as_view(), name="topups"),
    path("wallet/topups/<str:topup_id>/", payments.TopUpDetailView.as_view(), name="topup"),
    path("payouts/", payments.PayoutListCreateView.as_view(), name="payouts"),
    path("statements/<str:period>.csv", ledger.StatementCsvView.as_view(),
         name="statement-csv"),
    path("statements/<str:period>/", ledger.StatementView.as_view(), name="statement"),
    path("purchases/", purchases.PurchaseListCreateView.as_view(), name="purchases"),
    path("purchases/<str:purchase_id>/", purchases.PurchaseDetailView.as_view(), name="purchase"),
    path("purchases/<str:purchase_id>/invoice/", purchases.InvoiceView.as_view(),
         name="invoice"),
    path("devices/", licensing.DeviceListCreateView.as_view(), name="devices"),
    path("devices/<str:device_id>/revoke/", licensing.DeviceRevokeView.as_view(),
         name="device-revoke"),
    path("licences/", licensing.LicenceListView.as_view(), name="licences"),
    path("licences/<str:licence_id>/", licensing.LicenceDetailView.as_view(), name="licence"),
    path("licences/<str:licence_id>/receipt/", metering.ReceiptView.as_view(), name="receipt"),
    path("licences/<str:licence_id>/table/", licensing.LicenceTableView.as_view(),
         name="licence-table"),
    path("licences/<str:licence_id>/devices/", licensing.LicenceDevicesView.as_view(),
         name="licence-devices"),
    path("licences/<str:licence_id>/move/", licensing.LicenceMoveView.as_view(),
         name="licence-move"),
    path("library/", licensing.LibraryView.as_view(), name="library"),
    path("metering/orders/", metering.OrdersView.as_view(), name="metering-orders"),
    path("works/<str:work_id>/manifest/", licensing.ManifestView.as_view(), name="manifest"),
    path("revocations/", licensing.RevocationListView.as_view(), name="revocations"),
    path("revocations/equivocations/", licensing.RevocationEquivocationView.as_view(),
         name="revocation-equivocations"),
    path("peers/announce/", peers.AnnounceView.as_view(), name="peer-announce"),
    path("peers/heartbeat/", peers.HeartbeatView.as_view(), name="peer-heartbeat"),
    path("peers/index-credential/", peers.IndexCredentialView.as_view(),
         name="peer-index-credential"),
    path("peers/index-credential/revoke/", peers.IndexCredentialRevokeView.as_view(),
         name="peer-index-credential-revoke"),
    path("works/<str:work_id>/sources/", peers.SourcesView.as_view(), name="sources"),
    path("works/<str:work_id>/web-seeds/", peers.WebSeedListCreateView.as_view(),
         name="web-seeds"),
    path("works/<str:work_id>/web-seeds/<int:seed_id>/", peers.WebSeedDeleteView.as_view(),
         name="web-seed"),
    path("traces/", tracing.TraceListCreateView.as_view(), name="traces"),
    path("traces/<str:report_id>/", tracing.TraceDetailView.as_view(), name="trace"),
    path("compute/modules/", compute.ModuleCreateView.as_view(), name="compute-modules"),
    path("compute/modules/<str:sha256>/", compute.ModuleDetailView.as_view(),
         name="compute-module"),
    path("compute/jobs/", compute.JobListCreateView.as_view(), name="compute-jobs"),
    path("compute/jobs/<str:job_id>/", compute.JobDetailView.as_view(), name="compute-job"),
    path("compute/jobs/<str:job_id>/cancel/", compute.JobCancelView.as_view(),
         name="compute-job-cancel"),
    path("compute/jobs/<str:job_id>/units/", compute.JobUnitsView.as_view(),
         name="compute-job-units"),
    path("compute/jobs/<str:job_id>/units/<int:seq>/output/", compute.UnitOutputView.as_view(),
         name="compute-unit-output"),
    path("compute/jobs/<str:job_id>/results.zip", compute.JobResultsArchiveView.as_view(),
         name="compute-job-results"),
    path("compute/contributors/", compute.ContributorListCreateView.as_view(),
         name="compute-contributors"),
    path("compute/dispatch/", compute.DispatchView.as_view(), name="compute-dispatch"),
    path("compute/results/", compute.ResultsView.as_view(), name="compute-results"),
    path("payments/webhooks/<str:provider>/", payments.WebhookView.as_view(), name="webhook"),
    # members' services: each app keeps its own route list
    path("", include("exchange.community.api_urls")),
    path("", include("exchange.reviews.api_urls")),
    path("", include("exchange.messaging.api_urls")),
    path("", include("exchange.rooms.api_urls")),
]
