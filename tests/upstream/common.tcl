# common.tcl: helpers shared by tests/upstream/*.test (sourced by each file).
#
#   up::config PROVIDERS ?RELAY_EXTRA? ?TAIL?
#       a passthrough configuration; PROVIDERS is a list of
#       {NAME {key value ...}} (host defaults to 127.0.0.1, timeouts to 1s);
#       relay.providers lists them in order unless RELAY_EXTRA sets it.
#   up::ca                      the test CA file
#   up::closed_port             a local port where nothing listens
#   up::send D FROM RCPTS BODY  client::send_mail to daemon D
#   up::msgid REPLY             the ID in "250 2.0.0 Ok: queued as ID ..."
#   up::failed_lines D          the daemon's "upstream failed" log lines

namespace eval up {}

proc up::ca {} { return [dict get [cert ca] cert] }

proc up::config {providers {relay_extra ""} {tail ""}} {
    set names {}
    foreach pr $providers { lappend names [lindex $pr 0] }
    set cfg "\[relay\]\nlisten = 127.0.0.1:0\ndelivery = passthrough\nhostname = relay.test.example\ncontrol =\ndrain_timeout = 1s\n"
    if {![regexp -line {^providers\s*=} $relay_extra]} {
        append cfg "providers = [join $names {, }]\n"
    }
    append cfg $relay_extra "\n"
    foreach pr $providers {
        lassign $pr name kv
        set d [dict create host 127.0.0.1 connect_timeout 1s greeting_timeout 1s]
        set d [dict merge $d $kv]
        append cfg "\n\[provider $name\]\n"
        dict for {k v} $d { append cfg "$k = $v\n" }
    }
    append cfg $tail
    return $cfg
}

proc up::closed_port {} {
    set p [provider::start -mode plain]
    set port [provider::port $p]
    provider::stop $p
    return $port
}

proc up::send {d from rcpts body args} {
    client::send_mail [daemon::host $d] [daemon::port $d] $from $rcpts $body {*}$args
}

proc up::msgid {reply} {
    if {![regexp {queued as (\S+)} [dict get $reply text] -> id]} {
        harness::fail "no queue id in reply: [dict get $reply text]"
    }
    return $id
}

proc up::failed_lines {d} {
    regexp -all -inline -line {^.*upstream failed .*$} [daemon::log $d]
}
