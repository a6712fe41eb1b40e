"""The part of trustme (the ``tls`` extra) the local server uses (trustme 1.2 signatures)."""

import ssl

class Blob:
    def bytes(self) -> bytes: ...

class LeafCert:
    def configure_cert(self, ctx: ssl.SSLContext) -> None: ...

class CA:
    def __init__(
        self,
        parent_cert: CA | None = None,
        path_length: int = 9,
        organization_name: str | None = None,
        organization_unit_name: str | None = None,
    ) -> None: ...
    @property
    def cert_pem(self) -> Blob: ...
    def issue_cert(
        self,
        *identities: str,
        common_name: str | None = None,
        organization_name: str | None = None,
        organization_unit_name: str | None = None,
    ) -> LeafCert: ...
