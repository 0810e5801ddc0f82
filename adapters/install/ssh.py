"""``[install.ssh]``: how certflow reaches contract servers given as ``ssh://USER@HOST[:PORT]/DIR``.

Keys only (no passwords, no agent, no ~/.ssh/config), host keys pinned in our own
known_hosts file (no trust on first use: ``certflow ssh trust HOST[:PORT]`` records one).
The client is asyncssh: its SFTP ``open`` takes the new file's attributes, so a private
key is created 0600 by the open request itself, never widened and narrowed afterwards.
"""
from adapters.settings import Section, Setting

_POSITIVE = {"minimum": 0, "above_minimum": True}

SECTION = Section("install.ssh", "Installing on contract servers over SSH/SFTP "
                  "(`servers = [\"ssh://USER@HOST[:PORT]/DIR\"]`).", (
    Setting("identity", "path", "var/data/ssh/id_ed25519", "The private key certflow logs in "
            "with (OpenSSH format; `certflow init --ssh-key` makes one, `certflow ssh pubkey` "
            "prints its public half for the servers' authorized_keys)."),
    Setting("passphrase_env", "string", "CERTFLOW_SSH_PASSPHRASE", "Name of the environment "
            "variable holding the identity's passphrase (never the passphrase itself)."),
    Setting("known_hosts", "path", "var/data/ssh/known_hosts", "Pinned host keys (OpenSSH "
            "known_hosts format). An unknown or changed key is refused; `certflow ssh trust "
            "HOST[:PORT]` records one."),
    Setting("connect_timeout", "number", 10.0, "Seconds to open the TCP connection.", **_POSITIVE),
    Setting("auth_timeout", "number", 20.0, "Seconds for the SSH handshake and key login.",
            **_POSITIVE),
    Setting("command_timeout", "number", 60.0, "Seconds a reload command or one file "
            "operation may take on a server.", **_POSITIVE),
    Setting("parallel", "integer", 8, "Servers of one install worked on at once.", minimum=1,
            maximum=256),
    Setting("lock_dir", "path", "var/data/ssh/locks", "Per-server lock files: two orders "
            "(or two daemons on this host) never install on one server at once."),
    Setting("lock_timeout", "number", 120.0, "Seconds to wait for another install on the same "
            "server before retrying later.", **_POSITIVE),
))
