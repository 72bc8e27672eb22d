# common.tcl: helpers shared by tests/queue/{delivery,control,hold,spool}.test
# (sourced by each file).
#
#   q::provider ?OPTIONS?          a STARTTLS + AUTH fake provider (user u,
#                                  password secret) plus OPTIONS
#   q::config PORT ?-relay TEXT? ?-queue {KEY VALUE ...}? ?-provider TEXT?
#                  ?-delivery MODE?
#                                  a queue-mode (or MODE) configuration relaying to
#                                  127.0.0.1:PORT (STARTTLS, trusted by the
#                                  test CA); [queue] retry_initial = 1s,
#                                  retry_max = 2s unless -queue says otherwise
#   q::provider_section PORT       the [provider primary] section alone
#   q::daemon P ?OPTIONS?          daemon::start [q::config [provider::port P] ...]
#   q::closed_port                 a local port where nothing listens
#   q::send D FROM RCPTS BODY      one message through daemon D, asserted
#                                  "250 2.0.0 Ok: queued as ID" -> ID
#   q::spool D                     the spool directory the harness gave D
#   q::socket D                    the control socket the harness gave D
#   q::ctl D ARGS...               runs subrelayctl -s SOCKET ARGS (in the
#                                  background, the event loop keeps running)
#                                  -> dict {code N stdout TEXT stderr TEXT}
#   q::ctl_raw ARGS...             the same without -s
#   q::state FILE                  a .st state file as a dict (attempts,
#                                  next_try, last_error, rcpt {IDX STATE ...})
#   q::wait_file PATH ?TIMEOUT?    waits until PATH exists
#   q::wait_gone PATH ?TIMEOUT?    waits until PATH no longer exists
#   q::ls DIR                      sorted names in DIR ("" when missing)
#   q::rcpt_count P ADDR           how many RCPT TO:<ADDR> provider P received
#   q::mails_from P FROM           provider P's accepted messages from FROM
#   q::set_rcpt_reply P {ADDR REPLY ...}  replaces the provider's -rcpt-reply
#   q::tmpfs_spool                 a spool directory that daemons started
#                                  after it see as a 32 KiB tmpfs (a full
#                                  disk), in a private mount namespace;
#                                  skips the test without root or unshare
#   q::slow_provider_section PORT ?EXTRA?  [provider primary] with 30 s
#                                  connect and greeting timeouts, plus EXTRA
# The configuration has drain_timeout = 0s so that a daemon stops at once.

namespace eval q {
    variable ctlseq 0
}

proc q::ca {} { return [dict get [cert ca] cert] }

proc q::provider {args} {
    provider::start -mode starttls -user u -pass secret {*}$args
}

proc q::provider_section {port} {
    return "\[provider primary\]
host = 127.0.0.1
ports = $port/starttls
username = u
password = secret
tls_ca_file = [q::ca]
connect_timeout = 1s
greeting_timeout = 1s
"
}

proc q::config {port args} {
    array set o {-relay "" -queue {} -provider "" -delivery queue}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "q::config: unknown option $k" }
        set o($k) $v
    }
    set queue [dict merge {retry_initial 1s retry_max 2s} $o(-queue)]
    set qtext ""
    dict for {k v} $queue { append qtext "$k = $v\n" }
    set prov $o(-provider)
    if {$prov eq ""} { set prov [provider_section $port] }
    return "\[relay\]
listen = 127.0.0.1:0
delivery = $o(-delivery)
hostname = relay.test.example
drain_timeout = 0s
providers = primary
$o(-relay)

$prov
\[queue\]
$qtext"
}

proc q::daemon {p args} {
    daemon::start [q::config [provider::port $p] {*}$args]
}

proc q::closed_port {} {
    set s [::socket -server {apply {{ch a p} {close $ch}}} -myaddr 127.0.0.1 0]
    set port [lindex [chan configure $s -sockname] 2]
    close $s
    return $port
}

proc q::send {d from rcpts body} {
    set replies [client::send_mail [daemon::host $d] [daemon::port $d] $from $rcpts $body]
    set codes [client::codes $replies]
    set want [list 250 250 {*}[lrepeat [llength $rcpts] 250] 354 250 221]
    if {$codes ne $want} {
        harness::fail "sending to the daemon: expected codes $want, got $codes:\
            [join [lmap r $replies {dict get $r text}] { | }]"
    }
    set r [lindex $replies end-1]
    if {![regexp {^250 2\.0\.0 Ok: queued as ([0-9A-Z]+)$} [dict get $r text] -> id]} {
        harness::fail "unexpected reply to the end of data: [escape [dict get $r text]]"
    }
    return $id
}

proc q::spool {d} { file join [testdir] $d.spool }

proc q::socket {d} { file join $harness::rundir ctl-$d.sock }

proc q::tmpfs_spool {} {
    if {[exec id -u] != 0} { skip "needs root to mount a tmpfs in a private mount namespace" }
    if {[auto_execok unshare] eq ""} { skip "unshare(1) is not installed" }
    set bin [file join $harness::builddir subrelayd]
    if {![file executable $bin]} { skip "subrelayd not built ($bin)" }
    set spool [file join [testdir] spool]
    file mkdir $spool
    set mountcmd {mount -t tmpfs -o size=32k,mode=0700 tmpfs "$0" || exit 97}
    set probe [bgexec unshare --mount --propagation private /bin/sh -c "$mountcmd; exec true" $spool]
    set res [bgwait $probe]
    if {[dict get $res code] != 0} {
        skip "cannot mount a tmpfs in a private mount namespace: [string trim [dict get $res output]]"
    }
    set wrapper [tmpfile tmpfs-wrapper.sh "#!/bin/sh
# usage: tmpfs-wrapper.sh SPOOLDIR SUBRELAYD ARGS...
spool=\$1; shift
exec unshare --mount --propagation private /bin/sh -c '$mountcmd; exec \"\$@\"' \"\$spool\" \"\$@\"
"]
    file attributes $wrapper -permissions 0755
    set daemon::binary_override [list $wrapper $spool $bin]
    return $spool
}

proc q::ctl_raw {args} {
    set bin [file join $harness::builddir subrelayctl]
    if {![file executable $bin]} { skip "subrelayctl not built ($bin)" }
    set err [file join [testdir] ctl-[incr q::ctlseq].stderr]
    # stdout comes back through bgexec; stderr goes to its own file.
    set h [bgexec /bin/sh -c {err=$1; shift; exec "$@" 2>"$err"} sh $err $bin {*}$args]
    set res [bgwait $h]
    set stderr ""
    if {[file exists $err]} {
        set f [open $err r]
        set stderr [read $f]
        close $f
    }
    return [dict create code [dict get $res code] stdout [dict get $res output] stderr $stderr]
}

proc q::ctl {d args} {
    q::ctl_raw -s [q::socket $d] {*}$args
}

proc q::state {path} {
    set f [open $path r]
    set text [read $f]
    close $f
    set out [dict create rcpt {} text $text]
    foreach line [split $text "\n"] {
        if {[regexp {^rcpt (\d+) (\S+)$} $line -> i st]} {
            dict set out rcpt $i $st
        } elseif {[regexp {^(\S+) ?(.*)$} $line -> k v]} {
            dict set out $k $v
        }
    }
    return $out
}

proc q::wait_file {path {timeout ""}} {
    wait_until {[file exists $path]} $timeout "$path to exist"
}

proc q::wait_gone {path {timeout ""}} {
    wait_until {![file exists $path]} $timeout "$path to be removed"
}

proc q::ls {dir} {
    if {![file isdirectory $dir]} { return "" }
    lsort [lmap f [glob -nocomplain -directory $dir -tails *] {set f}]
}

proc q::rcpt_count {p addr} {
    set n 0
    foreach line [provider::commands $p] {
        if {[string equal -nocase "RCPT TO:<$addr>" $line]} { incr n }
    }
    return $n
}

proc q::mails_from {p from} {
    lmap m [provider::messages $p] {
        if {[dict get $m from] ne $from} continue
        set m
    }
}

# The fake provider's -rcpt-reply is fixed at start; this replaces it for
# the next RCPT commands (a restart on the same port would lose the
# transcript).
proc q::set_rcpt_reply {p replies} {
    set provider::P($p,rcpt-reply) $replies
}

# A [provider primary] section with long timeouts and EXTRA lines, for
# slow or silent fake providers.
proc q::slow_provider_section {port {extra ""}} {
    return "\[provider primary\]
host = 127.0.0.1
ports = $port/starttls
username = u
password = secret
tls_ca_file = [q::ca]
connect_timeout = 30s
greeting_timeout = 30s
$extra
"
}
