# common.tcl: helpers shared by tests/client/*.test (sourced by each file).
#
#   cl::provider ?OPTIONS?        a STARTTLS + AUTH fake provider (user u,
#                                 password secret) plus OPTIONS
#   cl::config P ?RELAY_EXTRA?    passthrough configuration relaying to P
#   cl::config_port PORT ?RELAY_EXTRA?  the same, to a provider port
#   cl::daemon P ?RELAY_EXTRA?    daemon::start [cl::config P RELAY_EXTRA]
#   cl::connect D                 client::connect to daemon D
#   cl::ehlo C                    EHLO, asserted 250
#   cl::mail_ok C FROM RCPTS      MAIL + RCPTs, each asserted 250
#   cl::expect CODE STATUS REPLY ?WHAT?  asserts a reply's code and
#                                 enhanced status -> REPLY
#   cl::closed_port               a local port where nothing listens
# The configuration has drain_timeout = 0s so that a client left open at the
# end of a test does not hold the daemon's SIGTERM for 10 s.

namespace eval cl {}

proc cl::ca {} { return [dict get [cert ca] cert] }

proc cl::provider {args} {
    provider::start -mode starttls -user u -pass secret {*}$args
}

proc cl::config_port {port {relay_extra ""}} {
    return "\[relay\]
listen = 127.0.0.1:0
delivery = passthrough
hostname = relay.test.example
control =
drain_timeout = 0s
providers = primary
$relay_extra

\[provider primary\]
host = 127.0.0.1
ports = $port/starttls
username = u
password = secret
tls_ca_file = [cl::ca]
connect_timeout = 1s
greeting_timeout = 1s
"
}

proc cl::config {p {relay_extra ""}} {
    cl::config_port [provider::port $p] $relay_extra
}

proc cl::daemon {p {relay_extra ""}} {
    daemon::start [cl::config $p $relay_extra]
}

proc cl::connect {d args} {
    client::connect [daemon::host $d] [daemon::port $d] {*}$args
}

# Asserts code and enhanced status of a reply.
proc cl::expect {code status r {what ""}} {
    set got "[dict get $r code] [dict get $r status]"
    if {$got ne "$code $status"} {
        harness::fail "[expr {$what ne "" ? "$what: " : ""}]expected reply $code $status,\
            got: [escape [dict get $r raw]]"
    }
    return $r
}

proc cl::ehlo {c {name client.test}} {
    set r [client::cmd $c "EHLO $name"]
    if {[dict get $r code] ne "250"} { harness::fail "EHLO refused: [escape [dict get $r raw]]" }
    return $r
}

proc cl::mail_ok {c from rcpts} {
    cl::expect 250 2.1.0 [client::cmd $c "MAIL FROM:<$from>"] "MAIL FROM:<$from>"
    foreach rc $rcpts {
        cl::expect 250 2.1.5 [client::cmd $c "RCPT TO:<$rc>"] "RCPT TO:<$rc>"
    }
}

proc cl::closed_port {} {
    set p [provider::start -mode plain]
    set port [provider::port $p]
    provider::stop $p
    return $port
}

# Server side TLS and AUTH (tls.test, auth.test).
#   cl::tls_lines ?CERT?          copies test certificate CERT (default
#                                 server) to the test directory, key mode
#                                 0600 -> the [relay] tls_cert_file and
#                                 tls_key_file lines
#   cl::users_file TEXT ?MODE?    writes a users_file (default mode 0600) -> path
#   cl::tls_ehlo C                EHLO, STARTTLS, handshake (chain verified), EHLO
#   cl::auth_plain C USER PASS    AUTH PLAIN with an initial response -> reply
proc cl::tls_lines {{name server}} {
    set dir [testdir]
    file copy -force [dict get [cert $name] cert] $dir/relay.crt
    file copy -force [dict get [cert $name] key] $dir/relay.key
    file attributes $dir/relay.key -permissions 0600
    return "tls_cert_file = $dir/relay.crt\ntls_key_file = $dir/relay.key"
}

proc cl::users_file {text {mode 0600}} {
    set path [tmpfile users $text]
    file attributes $path -permissions $mode
    return $path
}

proc cl::tls_ehlo {c} {
    cl::ehlo $c
    cl::expect 220 2.0.0 [client::cmd $c STARTTLS]
    client::starttls $c -verify 1
    cl::ehlo $c
}

proc cl::auth_plain {c user pass} {
    client::cmd $c "AUTH PLAIN [binary encode base64 "\0$user\0$pass"]"
}
