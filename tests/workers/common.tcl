# common.tcl: helpers shared by tests/workers/*.test (sourced by each file).
#
#   w::config MODE PORT ?-workers N? ?-relay TEXT?
#                                  relay.workers = N (default 2), delivery
#                                  MODE (queue|passthrough) to a STARTTLS +
#                                  AUTH provider on 127.0.0.1:PORT (the q::
#                                  provider: user u, password secret);
#                                  metrics on an ephemeral port
#   w::children D                  pids whose parent is daemon D, sorted
#   w::worker_pid D K ?MARK?       the pid of the latest `worker started
#                                  worker=K` line after MARK
#   w::wait_workers D N ?MARK?     waits until N `worker started` lines
#                                  follow MARK and the master logged
#                                  `started` -> {K PID ...}
#   w::send_parallel D N TAG       opens N connections first, then runs one
#                                  transaction on each, interleaved (every
#                                  session is open at once, so the kernel
#                                  spreads them over the workers); message
#                                  I has Subject and Message-ID TAG-I.
#                                  -> the end-of-data replies, in order
#   w::served_by D ?MARK?          the workers named on `connect` lines
#                                  (a sorted unique list, e.g. {0 1})
#   w::subjects P                  Subjects of provider P's messages
#   w::metric D NAME               the value of one metrics line (NAME is
#                                  the exact series, labels included)
#   w::gone PID                    1 once process PID no longer exists
#   w::names TAG N                 {TAG-0 ... TAG-N-1}, sorted

source [file join [file dirname [info script]] .. queue common.tcl]

namespace eval w {}

proc w::config {mode port args} {
    array set o {-workers 2 -relay ""}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "w::config: unknown option $k" }
        set o($k) $v
    }
    return "\[relay\]
listen = 127.0.0.1:0
delivery = $mode
hostname = relay.test.example
workers = $o(-workers)
metrics = 127.0.0.1:0
drain_timeout = 0s
providers = primary
$o(-relay)

[string map {"connect_timeout = 1s" "connect_timeout = 10s" "greeting_timeout = 1s" "greeting_timeout = 10s"} \
    [q::provider_section $port]]
; send_parallel holds its 40 transactions open at once (every client at
; DATA before any body): each needs a provider session of its own, and
; the fake provider, in this test's one Tcl thread beside 40 clients, may
; take more than a second to greet each of 40 TLS sessions on a busy
; machine (1 s failed the path now and then: a 451 to RCPT).
max_connections = 64
\[queue\]
retry_initial = 1s
retry_max = 1s
"
}

proc w::children {d} {
    set out {}
    foreach stat [glob -nocomplain /proc/\[0-9\]*/stat] {
        if {[catch {set f [open $stat r]; set line [read $f]; close $f}]} { continue }
        # pid (comm) state ppid ...: comm may hold spaces, so split after ")".
        set rest [string range $line [expr {[string last ")" $line] + 2}] end]
        if {[lindex $rest 1] == [daemon::pid $d]} {
            lappend out [lindex [split $stat /] 2]
        }
    }
    return [lsort -integer $out]
}

proc w::worker_pid {d k {mark 0}} {
    set pid ""
    foreach {-> p} [regexp -all -inline -line "worker started worker=$k pid=(\\d+)\$" [daemon::log $d $mark]] {
        set pid $p
    }
    return $pid
}

proc w::wait_workers {d n {mark 0}} {
    wait_until {[llength [regexp -all -inline -line {worker started worker=\d+} [daemon::log $d $mark]]] >= $n
        || ![daemon::alive $d]} "" "$n `worker started` lines"
    if {$mark == 0} { daemon::wait_log $d {started version=\S+ .* workers=} }
    set out {}
    foreach {-> k p} [regexp -all -inline -line {worker started worker=(\d+) pid=(\d+)$} [daemon::log $d $mark]] {
        lappend out $k $p
    }
    return $out
}

proc w::send_parallel {d n tag} {
    set cs {}
    for {set i 0} {$i < $n} {incr i} {
        lappend cs [client::connect [daemon::host $d] [daemon::port $d]]
    }
    foreach c $cs {
        client::send $c "EHLO client.test\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<to@example.net>\r\nDATA\r\n"
    }
    foreach c $cs {
        assert_equal {250 250 250 354} [client::codes [client::replies $c 4]]
    }
    set i 0
    foreach c $cs {
        client::send $c "Subject: $tag-$i\r\nMessage-ID: <$tag-$i@client.test>\r\n\r\nbody $i\r\n.\r\nQUIT\r\n"
        incr i
    }
    set out {}
    foreach c $cs {
        lappend out [lindex [client::replies $c 2] 0]
        client::close $c
    }
    return $out
}

proc w::served_by {d {mark 0}} {
    set ks {}
    foreach {-> k} [regexp -all -inline -line {connect id=\S+ client=\S+ worker=(\d+)$} [daemon::log $d $mark]] {
        lappend ks $k
    }
    return [lsort -unique -integer $ks]
}

proc w::subjects {p} {
    lmap m [provider::messages $p] {
        if {![regexp -line {^Subject: (\S+)\r?$} [dict get $m data] -> s]} { set s "" }
        set s
    }
}

proc w::metrics_text {d} {
    set line [daemon::wait_log $d {metrics address=\S+}]
    regexp {metrics address=([0-9.]+):([0-9]+)} $line -> host port
    set ch [socket $host $port]
    chan configure $ch -translation binary -blocking 0
    puts -nonewline $ch "GET /metrics HTTP/1.1\r\nHost: $host\r\n\r\n"
    flush $ch
    set ::w::http_data ""
    set ::w::http_ch $ch
    proc ::w::http_read {} { append ::w::http_data [read $::w::http_ch]; eof $::w::http_ch }
    wait_until {[::w::http_read]} 5000 "the metrics reply"
    close $ch
    return $::w::http_data
}

proc w::metric {d name} {
    set text [metrics_text $d]
    foreach line [split $text "\n"] {
        if {[string first "$name " $line] == 0} { return [string trim [string range $line [string length $name] end]] }
    }
    harness::fail "no metric $name in:\n$text"
}

proc w::gone {pid} {
    expr {![file exists /proc/$pid]}
}

proc w::names {tag n} {
    set out {}
    for {set i 0} {$i < $n} {incr i} { lappend out $tag-$i }
    return [lsort $out]
}
