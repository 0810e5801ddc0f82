import test_e2e_install as t
orig = t.daemon_until
def wrapped(config, oid, states):
    o = orig(config, oid, states)
    print("STATE", o["state"], "REASON", o["reason"])
    print(t.run_cli(config, "order", "history", oid).stdout)
    return o
t.daemon_until = wrapped
