"""Microsoft Advertising Customer Management REST API v13: ``GetUser``, ``GetAccount``, ``GetAccountsInfo``."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_msads.testing.emulator._ads_api import _AdsApi
from airflow_provider_msads.testing.emulator._catalogues import _JSON
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._model import EmulatorAccount, _as_id


def _address(address_id: str, business_name: str | None) -> dict[str, object]:
    """The one postal address of the emulated world (the user's contact and every account's)."""
    return {
        "City": "Redmond",
        "CountryCode": "US",
        "Id": address_id,
        "Line1": "1 Emulator Way",
        "Line2": None,
        "Line3": None,
        "Line4": None,
        "PostalCode": "98052",
        "StateOrProvince": "WA",
        "TimeStamp": None,
        "BusinessName": business_name,
    }


class _CustomerManagement(_AdsApi):
    """Customer Management REST v13: the user, their accounts and the customers they have a role in."""

    def _api_endpoint(self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        operations = {
            "GetUser": self._get_user,
            "GetAccount": self._get_account,
            "GetAccountsInfo": self._get_accounts_info,
        }
        return self._ads_endpoint("api", operation, method, headers, body, operations=operations, fault=self._fault)

    def _get_user(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        requested = payload.get("UserId")
        if requested is not None and _as_id(requested) != self.user_id:
            return self._fault(106, tracking_id)
        user: dict[str, object] = {
            "ContactInfo": {
                "Address": _address(str(int(self.user_id) + 1), None),
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
            "BusinessAddress": _address(str(int(account.id) + 1), account.name),
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
        # GetAccountsInfo page: OnlyParentAccounts true limits the answer to accounts directly under
        # the customer; otherwise linked accounts under other customers are listed too.
        only_parents = payload.get("OnlyParentAccounts") is True
        infos = [
            {
                "Id": account.id,
                "Name": account.name,
                "Number": account.number,
                "AccountLifeCycleStatus": account.status,
                "PauseReason": 1 if account.status == "Pause" else None,
            }
            for account in self._accounts.values()
            if account.parent_customer_id == customer_id or (not only_parents and account.managed_by == customer_id)
        ]
        return _Reply(200, _json_bytes({"AccountsInfo": infos}), _JSON)
