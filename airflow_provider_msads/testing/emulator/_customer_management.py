"""Microsoft Advertising Customer Management REST API v13 and the Ads API fault shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from airflow_provider_msads.testing.emulator._catalogues import _FAULTS, _JSON, _Fault
from airflow_provider_msads.testing.emulator._http import _format_retry_after, _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._injection import _FaultInjection
from airflow_provider_msads.testing.emulator._model import EmulatorAccount, _as_id, _Injection


class _CustomerManagement(_FaultInjection):
    """Customer Management REST v13 (``GetUser``, ``GetAccount``, ``GetAccountsInfo``) and the Ads
    API's two fault shapes, which the other Ads services answer with too."""

    # ---------------------------------------------------------------------- Customer Management API

    def _api_endpoint(self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        tracking_id = str(uuid.uuid4())
        with self._lock:
            self.counters["api"] += 1
            if operation is not None:
                self.counters[f"api.{operation}"] += 1
        injection = self._take_injection("api", operation)
        if injection is not None:
            injected = self._injected_api_reply(injection, tracking_id)
            if injected is not None:
                return injected
        reply = self._api_logic(operation, method, headers, body, tracking_id)
        reply.headers.append(("TrackingId", tracking_id))
        reply.delay += self._delay_of(injection)
        return reply

    def _injected_api_reply(self, injection: _Injection, tracking_id: str) -> _Reply | None:
        reply = self._generic_injection(injection, "api")
        if reply is None and injection.kind == "fault":
            reply = self._fault(injection.code if injection.code is not None else 0, tracking_id)
            if injection.status is not None:
                reply.status = injection.status
            if injection.retry_after is not None:
                reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
        if reply is not None:
            reply.headers.append(("TrackingId", tracking_id))
        return reply

    @staticmethod
    def _fault(code: int, tracking_id: str, message: str | None = None) -> _Reply:
        spec = _FAULTS.get(code) or _Fault(f"Error{code}", f"Emulated fault {code}.", 400, code >= 1000)
        text = message or spec.message
        body: dict[str, object]
        if spec.api_fault:
            body = {
                "TrackingId": tracking_id,
                "Type": "ApiFault",
                "OperationErrors": [{"Code": code, "Details": None, "Message": text}],
            }
        else:
            body = {
                "TrackingId": tracking_id,
                "Type": "AdApiFaultDetail",
                "Errors": [{"Code": code, "Detail": None, "ErrorCode": spec.error_code, "Message": text}],
            }
        return _Reply(spec.status, _json_bytes(body), _JSON)

    def _api_logic(
        self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes, tracking_id: str
    ) -> _Reply:
        if operation is None:
            return _Reply(404, b"", None)
        if method != "POST":
            return _Reply(405, b"", None, [("Allow", "POST")])
        with self._lock:
            refused = self._refused_caller(headers, tracking_id)
            if refused is not None:
                return refused
            try:
                payload = json.loads(body) if body.strip() else None
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return self._fault(100, tracking_id)
            if operation == "GetUser":
                return self._get_user(payload, tracking_id)
            if operation == "GetAccount":
                return self._get_account(payload, tracking_id)
            return self._get_accounts_info(payload, tracking_id)

    def _refused_caller(self, headers: Mapping[str, str], tracking_id: str) -> _Reply | None:
        """The Ads API's header checks, shared by every Ads service: None when the caller may pass."""
        authorization = headers.get("authorization", "").strip()
        developer_token = headers.get("developertoken", "").strip()
        if not authorization or not developer_token:
            return self._fault(116, tracking_id)
        scheme, _, access = authorization.partition(" ")
        with self._lock:
            record = self._access.get(access.strip()) if scheme.lower() == "bearer" else None
            if record is None or record.revoked:
                return self._fault(105, tracking_id)
            if record.expired or self.clock() >= record.expires_at:
                return self._fault(109, tracking_id)
            if record.environment != "production" or developer_token != self.developer_token:
                return self._fault(105, tracking_id)
        return None

    def _get_user(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        requested = payload.get("UserId")
        if requested is not None and _as_id(requested) != self.user_id:
            return self._fault(106, tracking_id)
        user: dict[str, object] = {
            "ContactInfo": {
                "Address": {
                    "City": "Redmond",
                    "CountryCode": "US",
                    "Id": str(int(self.user_id) + 1),
                    "Line1": "1 Emulator Way",
                    "Line2": None,
                    "Line3": None,
                    "Line4": None,
                    "PostalCode": "98052",
                    "StateOrProvince": "WA",
                    "TimeStamp": None,
                    "BusinessName": None,
                },
                "ContactByPhone": False,
                "ContactByPostalMail": False,
                "Email": self.user_name,
                "EmailFormat": "Html",
                "Fax": None,
                "HomePhone": None,
                "Id": str(int(self.user_id) + 2),
                "Mobile": None,
                "Phone1": "4255550100",
                "Phone2": None,
            },
            "CustomerId": self.customer_id,
            "Id": self.user_id,
            "JobTitle": None,
            "LastModifiedByUserId": self.user_id,
            "LastModifiedTime": "2024-01-15T09:30:00.123",
            "Lcid": "EnglishUS",
            "Name": {"FirstName": "Emulated", "LastName": "User", "MiddleInitial": None},
            "Password": None,
            "SecretAnswer": None,
            "SecretQuestion": "None",
            "UserLifeCycleStatus": "Active",
            "TimeStamp": "AAAAAAAbHXs=",
            "UserName": self.user_name,
            "ForwardCompatibilityMap": [],
            "AuthenticationToken": None,
        }
        roles = [
            {
                "RoleId": 41,
                "CustomerId": customer,
                "AccountIds": None,
                "LinkedAccountIds": None,
                "CustomerLinkPermission": None,
            }
            for customer in self._user_customers()
        ]
        return _Reply(200, _json_bytes({"User": user, "CustomerRoles": roles}), _JSON)

    def _account_json(self, account: EmulatorAccount) -> dict[str, object]:
        return {
            "BillToCustomerId": account.parent_customer_id,
            "CurrencyCode": account.currency_code,
            "AccountFinancialStatus": "ClearFinancialStatus",
            "Id": account.id,
            "Language": "English",
            "LastModifiedByUserId": self.user_id,
            "LastModifiedTime": "2024-01-15T09:31:00.456",
            "Name": account.name,
            "Number": account.number,
            "ParentCustomerId": account.parent_customer_id,
            "PaymentMethodId": None,
            "PaymentMethodType": None,
            "PrimaryUserId": self.user_id,
            "AccountLifeCycleStatus": account.status,
            "TimeStamp": "AAAAAAAbHX0=",
            "TimeZone": account.time_zone,
            "PauseReason": 1 if account.status == "Pause" else None,
            "ForwardCompatibilityMap": [],
            "LinkedAgencies": [],
            "SalesHouseCustomerId": None,
            "TaxInformation": None,
            "BackUpPaymentInstrumentId": None,
            "BillingThresholdAmount": None,
            "BusinessAddress": {
                "City": "Redmond",
                "CountryCode": "US",
                "Id": str(int(account.id) + 1),
                "Line1": "1 Emulator Way",
                "Line2": None,
                "Line3": None,
                "Line4": None,
                "PostalCode": "98052",
                "StateOrProvince": "WA",
                "TimeStamp": None,
                "BusinessName": account.name,
            },
            "AutoTagType": "Inactive",
            "SoldToPaymentInstrumentId": None,
            "TaxCertificate": None,
            "AccountMode": "Expert",
        }

    def _get_account(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        account_id = _as_id(payload.get("AccountId"))
        account = self._accounts.get(account_id) if account_id is not None else None
        if account is None:  # also an account *number* such as "F1234ABC" given as the id
            return self._fault(1102, tracking_id)
        customers = self._user_customers()
        if account.parent_customer_id not in customers and account.managed_by not in customers:
            return self._fault(106, tracking_id)
        return _Reply(200, _json_bytes({"Account": self._account_json(account)}), _JSON)

    def _user_customers(self) -> list[str]:
        return [self.customer_id, *(c for c in self.role_customer_ids if c != self.customer_id)]

    def _get_accounts_info(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        raw = payload.get("CustomerId")
        customer_id = self.customer_id if raw is None else _as_id(raw)
        if customer_id not in self._user_customers():
            return self._fault(1490, tracking_id)
        infos = [
            {
                "Id": account.id,
                "Name": account.name,
                "Number": account.number,
                "AccountLifeCycleStatus": account.status,
                "PauseReason": 1 if account.status == "Pause" else None,
            }
            for account in self._accounts.values()
            if customer_id in (account.parent_customer_id, account.managed_by)
        ]
        return _Reply(200, _json_bytes({"AccountsInfo": infos}), _JSON)
