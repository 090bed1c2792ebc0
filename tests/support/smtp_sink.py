#!/usr/bin/python3
"""A local SMTP server for tests: the mail submission a hotel's provider would run.

  smtp_sink.py CERT KEY USER PASSWORD OUT_DIR [--reject-rcpt-code N]

Listens on 127.0.0.1 on a free port and prints "port N" once ready; runs until SIGTERM. STARTTLS is required
before anything else (aiosmtpd answers 530 otherwise), and AUTH (PLAIN or LOGIN, only over
TLS) with USER/PASSWORD before MAIL. Every accepted message is written to OUT_DIR as
<n>.json: {"mail_from", "rcpt_tos", "data", "tls", "auth_user"}, written to a temporary
name first so a reader never sees half a file. With --reject-rcpt-code N every RCPT TO is
answered N (e.g. 550, 451) to test how failures are classified.

aiosmtpd is Debian's python3-aiosmtpd: an implementation independent of libcurl's client.
"""
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    cert, key, user, password, out_dir = sys.argv[1:6]
    reject = None
    if len(sys.argv) > 7 and sys.argv[6] == "--reject-rcpt-code":
        reject = int(sys.argv[7])

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    count = [0]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if reject:
                return "%d Recipient refused by the test sink" % reject
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            count[0] += 1
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.original_content.decode("utf-8", "replace"),
                "tls": session.ssl is not None,
                "auth_user": session.auth_data if session.authenticated else None,
            }
            path = os.path.join(out_dir, "%d.json" % count[0])
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            return "250 Message accepted for delivery"

    # Port 0 is not supported by Controller's readiness check: take a free port first.
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_required=True,
                            auth_require_tls=True, decode_data=False,
                            server_hostname="localhost", ready_timeout=10)
    controller.start()
    print("port %d" % port, flush=True)
    try:
        threading.Event().wait()  # until SIGTERM (the test's child_process ends it)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
