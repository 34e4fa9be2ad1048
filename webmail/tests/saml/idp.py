#!/usr/bin/env python3
"""A test SAML 2.0 identity provider built on pysaml2, driven by webmail/tests/saml.rs.

Test-only. It never listens on a socket: the Rust test calls it as a command.

    idp.py init DIR ENTITY_ID SSO_URL
        Makes DIR/key.pem and DIR/cert.pem (a fresh self-signed RSA key, with openssl) and
        writes DIR/metadata.xml, the IdP's metadata (signing certificate, HTTP-Redirect SSO).

    idp.py respond DIR SP_METADATA REQUEST_URL INS [--sign response|assertion|both|none]
                   [--sha1]
        Reads the SP's metadata and the AuthnRequest from the HTTP-Redirect URL the SP built,
        and prints the base64 SAMLResponse (HTTP-POST binding) for a patient whose attribute
        `ins` is INS, signed with DIR's key and issued by the entity id recorded in DIR.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import warnings
from urllib.parse import parse_qs, urlparse

warnings.filterwarnings("ignore")

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import create_metadata_string  # noqa: E402
from saml2.saml import NAMEID_FORMAT_TRANSIENT  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.saml import AUTHN_PASSWORD  # noqa: E402
from saml2.xmldsig import (  # noqa: E402
    DIGEST_SHA1,
    DIGEST_SHA256,
    SIG_RSA_SHA1,
    SIG_RSA_SHA256,
)


def xmlsec_binary():
    path = shutil.which("xmlsec1")
    if path is None:
        sys.exit("xmlsec1 is missing: run scripts/install-deps --tests")
    return path


def idp_config(workdir, entity_id, sso_url, sp_metadata=None):
    config = {
        "entityid": entity_id,
        "xmlsec_binary": xmlsec_binary(),
        "key_file": os.path.join(workdir, "key.pem"),
        "cert_file": os.path.join(workdir, "cert.pem"),
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]},
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
                    }
                },
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                "want_authn_requests_signed": False,
            }
        },
        "metadata": {"local": [sp_metadata]} if sp_metadata else {},
    }
    conf = IdPConfig()
    conf.load(config)
    return conf


def init(args):
    os.makedirs(args.dir, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=mshub test IdP (test only)",
            "-keyout", os.path.join(args.dir, "key.pem"),
            "-out", os.path.join(args.dir, "cert.pem"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(os.path.join(args.dir, "idp.json"), "w") as f:
        json.dump({"entity_id": args.entity_id, "sso_url": args.sso_url}, f)
    metadata = create_metadata_string(None, config=idp_config(args.dir, args.entity_id, args.sso_url))
    with open(os.path.join(args.dir, "metadata.xml"), "wb") as f:
        f.write(metadata if isinstance(metadata, bytes) else metadata.encode())


def respond(args):
    with open(os.path.join(args.dir, "idp.json")) as f:
        idp = json.load(f)
    server = Server(config=idp_config(args.dir, idp["entity_id"], idp["sso_url"], args.sp_metadata))
    query = parse_qs(urlparse(args.request_url).query)
    request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
    acs_url = request.assertion_consumer_service_url
    sp_entity_id = request.issuer.text
    name_id = server.ident.transient_nameid(sp_entity_id, "patient")
    response = server.create_authn_response(
        identity={"ins": [args.ins]},
        in_response_to=request.id,
        destination=acs_url,
        sp_entity_id=sp_entity_id,
        name_id=name_id,
        authn={"class_ref": AUTHN_PASSWORD, "authn_auth": idp["entity_id"]},
        sign_response=args.sign in ("response", "both"),
        sign_assertion=args.sign in ("assertion", "both"),
        sign_alg=SIG_RSA_SHA1 if args.sha1 else SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA1 if args.sha1 else DIGEST_SHA256,
    )
    sys.stdout.write(base64.b64encode(str(response).encode()).decode())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("init")
    p.add_argument("dir")
    p.add_argument("entity_id")
    p.add_argument("sso_url")
    p.set_defaults(run=init)
    p = commands.add_parser("respond")
    p.add_argument("dir")
    p.add_argument("sp_metadata")
    p.add_argument("request_url")
    p.add_argument("ins")
    p.add_argument("--sign", choices=["response", "assertion", "both", "none"], default="assertion")
    p.add_argument("--sha1", action="store_true")
    p.set_defaults(run=respond)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
