# client.tcl: an SMTP client for tests, on non-blocking sockets serviced by
# the event loop, so the fake provider keeps running while a test waits.
# Everything on the wire is bytes: strings are sent as-is (chars 0-255);
# use [utf8 STR] for UTF-8 text.
#
#   client::connect HOST PORT ?-timeout MS? ?-greeting 0? ?-myaddr IP?  -> handle
#       (reads the greeting unless -greeting 0; -myaddr: the local address,
#       e.g. 127.0.0.2 to be told apart from other loopback clients)
#   client::greeting C            the greeting reply (a reply dict)
#   client::cmd C LINE ?TIMEOUT?  sends LINE CRLF, returns the reply
#   client::send C BYTES          raw bytes, nothing added
#   client::reply C ?TIMEOUT?     reads one full reply
#   client::replies C N ?TIMEOUT? reads N replies (pipelining)
#   client::closed C ?TIMEOUT?    1 once the server closed the connection
#                                 (0 if it is still open after TIMEOUT)
#   client::pending C             bytes received but not yet read as replies
#   client::local C               the connection's own address: {IP PORT}
#   client::starttls C ?-verify 0|1? ?-cafile F? ?-servername N?
#                                 TLS handshake (after the 220 to STARTTLS, or
#                                 right after connect -greeting 0 for implicit
#                                 TLS); -verify 1 checks the chain against
#                                 -cafile (default: the test CA), not the name
#   client::tls_status C          tls::status of the connection
#   client::close C
#   client::send_mail HOST PORT FROM RCPTS BODY ?-ehlo NAME?
#       EHLO, MAIL, RCPT..., DATA, BODY + "\r\n.\r\n", QUIT; returns the
#       replies (greeting excluded); stops early when a step fails
#   client::codes REPLIES         the codes of a list of replies
# A reply is a dict: code (e.g. 250), status (enhanced code of the last line
# or ""), lines (text after "250-"/"250 " per line), text (lines with their
# codes, joined by "\n"), raw (the exact bytes).

namespace eval client {
    variable seq 0
    variable S          ;# "$c,key"
    variable live {}
}
harness::register_module client

proc client::connect {host port args} {
    variable S; variable seq; variable live
    array set o {-timeout "" -greeting 1 -myaddr ""}
    array set o $args
    set c cli[incr seq]
    set local [expr {$o(-myaddr) eq "" ? {} : [list -myaddr $o(-myaddr)]}]
    if {[catch {socket -async {*}$local $host $port} ch]} {
        harness::fail "connect to $host:$port failed: $ch"
    }
    set S($c,chan) $ch
    set S($c,buf) ""
    set S($c,eof) 0
    set S($c,connected) 0
    set S($c,greeting) ""
    set S($c,where) "$host:$port"
    lappend live $c
    chan configure $ch -blocking 0 -translation binary -buffering full
    fileevent $ch writable [list client::connected $c]
    wait_until {$client::S($c,connected)} $o(-timeout) "connection to $host:$port"
    set err [chan configure $ch -error]
    if {$err ne ""} {
        close $c
        harness::fail "connect to $host:$port failed: $err"
    }
    fileevent $ch readable [list client::readable $c]
    if {$o(-greeting)} {
        set S($c,greeting) [reply $c $o(-timeout)]
    }
    return $c
}

proc client::connected {c} {
    variable S
    fileevent $S($c,chan) writable {}
    set S($c,connected) 1
    harness::wakeup
}

proc client::readable {c} {
    variable S
    if {![info exists S($c,chan)]} { return }
    set ch $S($c,chan)
    if {[catch {read $ch} data]} {
        set S($c,eof) 1
        fileevent $ch readable {}
        harness::wakeup
        return
    }
    append S($c,buf) $data
    if {[eof $ch]} {
        set S($c,eof) 1
        fileevent $ch readable {}
    }
    harness::wakeup
}

proc client::greeting {c} { return $client::S($c,greeting) }
proc client::pending {c} { return $client::S($c,buf) }
proc client::local {c} {
    lassign [chan configure $client::S($c,chan) -sockname] ip -> port
    return [list $ip $port]
}

proc client::send {c bytes} {
    variable S
    if {[regexp {[\u0100-\uffff]} $bytes]} {
        harness::fail "client::send: characters above 255 in data; use \[utf8 ...\]"
    }
    if {[catch {puts -nonewline $S($c,chan) $bytes; flush $S($c,chan)} err]} {
        harness::fail "client::send to $S($c,where) failed: $err"
    }
}

proc client::cmd {c line {timeout ""}} {
    send $c "$line\r\n"
    return [reply $c $timeout]
}

# A full reply at the start of the buffer, as a dict; "" if incomplete.
proc client::parse {c} {
    variable S
    set buf $S($c,buf)
    set pos 0
    set lines {}
    set texts {}
    while {1} {
        set k [string first "\r\n" $buf $pos]
        if {$k < 0} { return "" }
        set line [string range $buf $pos [expr {$k - 1}]]
        set pos [expr {$k + 2}]
        if {![regexp {^([2-5][0-9][0-9])([ -]?)(.*)$} $line -> code sep text]
                || ($sep eq "" && $text ne "")} {
            harness::fail "malformed reply line from $S($c,where): [escape $line]\
                (received: [escape $buf])"
        }
        if {[llength $lines] && $code ne [dict get $first code]} {
            harness::fail "reply code changed inside a multi-line reply:\
                [escape [string range $buf 0 [expr {$pos - 1}]]]"
        }
        if {![llength $lines]} { set first [dict create code $code] }
        lappend lines $line
        lappend texts $text
        if {$sep ne "-"} { break }
    }
    set S($c,buf) [string range $buf $pos end]
    set status ""
    regexp {^([245]\.[0-9]{1,3}\.[0-9]{1,3})\M} [lindex $texts end] -> status
    return [dict create code $code status $status lines $texts \
        text [join $lines "\n"] raw [string range $buf 0 [expr {$pos - 1}]]]
}

proc client::reply {c {timeout ""}} {
    variable S
    if {$timeout eq ""} { set timeout $::harness::default_timeout }
    set end [expr {[clock milliseconds] + $timeout}]
    while {1} {
        set r [parse $c]
        if {$r ne ""} { return $r }
        if {$S($c,eof)} {
            harness::fail "connection to $S($c,where) closed while waiting for a reply\
                (unread bytes: [escape $S($c,buf)])"
        }
        harness::check_deadline
        set left [expr {$end - [clock milliseconds]}]
        if {$left <= 0} {
            harness::fail "timed out after $timeout ms waiting for a reply from\
                $S($c,where) (unread bytes: [escape $S($c,buf)])"
        }
        harness::pump [expr {min(200, $left)}]
    }
}

proc client::replies {c n {timeout ""}} {
    set out {}
    for {set i 0} {$i < $n} {incr i} { lappend out [reply $c $timeout] }
    return $out
}

proc client::closed {c {timeout ""}} {
    variable S
    if {$timeout eq ""} { set timeout $::harness::default_timeout }
    set end [expr {[clock milliseconds] + $timeout}]
    while {!$S($c,eof)} {
        harness::check_deadline
        set left [expr {$end - [clock milliseconds]}]
        if {$left <= 0} { return 0 }
        harness::pump [expr {min(200, $left)}]
    }
    return 1
}

proc client::starttls {c args} {
    variable S
    array set o [list -cafile [dict get [cert ca] cert] -servername "" -timeout "" -verify 0]
    array set o $args
    set ch $S($c,chan)
    fileevent $ch readable {}
    set opts [list -cafile $o(-cafile) -require $o(-verify) -request 1 \
        -command [list harness::tls_callback [list client::tls_error $c]]]
    if {$o(-servername) ne ""} { lappend opts -servername $o(-servername) }
    tls::import $ch {*}$opts
    chan configure $ch -blocking 0 -translation binary -buffering full
    set S($c,hs) 0
    set S($c,hs_error) ""
    fileevent $ch readable [list client::handshake $c]
    fileevent $ch writable [list client::handshake $c]
    wait_until {$client::S($c,hs) != 0} $o(-timeout) "TLS handshake with $S($c,where)"
    if {$S($c,hs) < 0} {
        harness::fail "TLS handshake with $S($c,where) failed: $S($c,hs_error)"
    }
    fileevent $ch readable [list client::readable $c]
    after idle [list client::readable $c]
}

proc client::tls_error {c msg} {
    set client::S($c,tls_error) $msg
}

proc client::handshake {c} {
    variable S
    set ch $S($c,chan)
    if {[catch {tls::handshake $ch} done]} {
        if {[string match -nocase "*temporarily unavailable*" $done]} { return }
        set S($c,hs_error) $done
        if {[info exists S($c,tls_error)] && [string first $S($c,tls_error) $done] < 0} {
            append S($c,hs_error) " (" $S($c,tls_error) ")"
        }
        set done -1
    } elseif {!$done} {
        return
    }
    fileevent $ch readable {}
    fileevent $ch writable {}
    set S($c,hs) $done
    harness::wakeup
}

proc client::tls_status {c} { tls::status $client::S($c,chan) }

proc client::close {c} {
    variable S; variable live
    if {![info exists S($c,chan)]} { return }
    catch {::close $S($c,chan)}
    unset S($c,chan)
    set live [lsearch -all -inline -not -exact $live $c]
}

proc client::codes {replies} {
    lmap r $replies { dict get $r code }
}

proc client::send_mail {host port from rcpts body args} {
    array set o {-ehlo client.test -timeout ""}
    array set o $args
    set c [connect $host $port -timeout $o(-timeout)]
    set out {}
    try {
        lappend out [set r [cmd $c "EHLO $o(-ehlo)" $o(-timeout)]]
        if {![string match 2* [dict get $r code]]} { return $out }
        lappend out [set r [cmd $c "MAIL FROM:<$from>" $o(-timeout)]]
        if {![string match 2* [dict get $r code]]} {
            lappend out [cmd $c QUIT $o(-timeout)]
            return $out
        }
        set ok 0
        foreach rcpt $rcpts {
            lappend out [set r [cmd $c "RCPT TO:<$rcpt>" $o(-timeout)]]
            if {[string match 2* [dict get $r code]]} { set ok 1 }
        }
        if {!$ok} {
            lappend out [cmd $c QUIT $o(-timeout)]
            return $out
        }
        lappend out [set r [cmd $c DATA $o(-timeout)]]
        if {[dict get $r code] ne "354"} {
            lappend out [cmd $c QUIT $o(-timeout)]
            return $out
        }
        send $c "$body\r\n.\r\n"
        lappend out [reply $c $o(-timeout)]
        lappend out [cmd $c QUIT $o(-timeout)]
        return $out
    } finally {
        close $c
    }
}

proc client::_cleanup {} {
    variable live
    foreach c $live { catch {close $c} }
    return {}
}

proc client::_reset {} {
    variable S; variable live
    array unset S
    set live {}
}
