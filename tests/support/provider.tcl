# provider.tcl: a fake mail provider (SMTP server) living inside the test's
# tclsh on the Tcl event loop (non-blocking channels, fileevent), so a test
# can drive the daemon and watch the provider at the same time.
#
#   provider::start ?-option value ...?  -> handle (listens on port 0)
#     -mode starttls|implicit|plain   (default starttls)
#     -cert server|untrusted|expired|wronghost, or a dict {cert F key F}
#     -auth {PLAIN LOGIN}     mechanisms advertised after TLS (plain and
#                             implicit modes: always); {} for no AUTH. Only
#                             PLAIN, LOGIN and XOAUTH2 work; others are
#                             advertised only
#     -user U -pass P         then MAIL needs AUTH with exactly these
#     -token T                XOAUTH2 accepts user U (when -user is set) with
#                             the bearer token T only (provider::set_token P T)
#     -xoauth2-refusal R      the reply to a wrong token (default
#                             "535 5.7.3 Authentication unsuccessful"), or
#                             "challenge": the 334 error challenge (base64
#                             JSON), then 535 5.7.8 after the client's empty line
#     -auth-in-clear 1        starttls mode: offer and accept AUTH before TLS
#                             too (a careless server; for leak tests)
#     -no-starttls 1          stripping middlebox: no STARTTLS, and it gets 502
#     -greeting-delay MS      -silent 1 (accept, never answer: a tarpit)
#     -pipelining 0|1         (default 1)   -size N (default 52428800)
#     -extensions LIST        replaces 8BITMIME SIZE ENHANCEDSTATUSCODES SMTPUTF8
#                             PIPELINING ({} for none); MAIL parameters need
#                             their extension (SIZE BODY SMTPUTF8), else 555
#     -reply {VERB REPLY ?COUNT?} or a list of such; repeatable
#         VERB: GREETING EHLO HELO STARTTLS AUTH MAIL RCPT DATA DOT RSET NOOP QUIT
#         REPLY: full reply text ("451 4.3.0 try later"; "\n" separates lines
#         of a multi-line reply) or "close" (drop the connection silently).
#         COUNT: how many times (default: forever). A 421 reply also closes.
#     -rcpt-reply {ADDRESS REPLY ...}   reply for one recipient address
#     -close-at VERB or {VERB COUNT}    same as -reply {VERB close ?COUNT?}
#     -tls-protocols {tls1.2 tls1.3}    protocol versions offered (default all)
#     -host 127.0.0.1 (or ::1)          -hostname NAME (greeting/EHLO name)
#     -port N                 (default 0: any free port) e.g. to bring a
#                             stopped provider back on the same port
#   provider::port P / provider::host P / provider::stop P
#   provider::messages P ?-all?  accepted messages (with -all: rejected at DOT
#       too); dicts: from rcpts data params auth_mech auth_user tls
#       tls_version conn helo reply accepted. data = the exact bytes after the
#       354 up to and including the CRLF before the terminating ".", still
#       dot-stuffed.
#   provider::transcript P   list of {CONN LINE}, every command line received
#       (AUTH payloads shown as <redacted>; "." marks each end of DATA, the
#       message lines are not listed); provider::commands P ?CONN? the lines
#       only
#   provider::command_times P GLOB  [clock milliseconds] at which each
#       command line matching GLOB arrived, in order (e.g. "MAIL FROM:*")
#   provider::cleartext P ?CONN?  bytes received before TLS
#   provider::received P CONN     every byte received on that connection
#                                 (after TLS decryption)
#   provider::connections P       accepted TCP connections so far
#   provider::open_connections P  connections still open
#   provider::conn P CONN         dict about one connection: tls tls_version
#                                 cipher helo auth_mech auth_user closed
#   provider::auths P             AUTH attempts: dicts {conn mech user ok tls}
#   provider::bearers P           XOAUTH2 attempts: dicts {conn user token ok}
#   provider::tls_errors P        failed TLS handshakes: {CONN MESSAGE} pairs
#   provider::wait_messages P N ?TIMEOUT_MS? -> the messages
#   provider::wait_connections P N ?TIMEOUT_MS?
#   provider::wait_command P GLOB ?TIMEOUT_MS?  -> first matching line
#   provider::set_reply P VERB REPLY ?COUNT?  (REPLY "" removes the script)
#   provider::drop_connections P  closes every open connection (the listener stays)
# Lines end only at CRLF: a bare LF is data, as a strict RFC 5321 server
# sees it; only CRLF.CRLF ends DATA.

namespace eval provider {
    variable seq 0
    variable P            ;# "$p,key": provider state
    variable C            ;# "$ch,key": connection state
    variable live {}      ;# providers of the current test
    variable verbs {GREETING EHLO HELO STARTTLS AUTH MAIL RCPT DATA DOT RSET NOOP QUIT VRFY}
}
harness::register_module provider

proc provider::start {args} {
    variable P; variable seq; variable live; variable verbs
    set p prov[incr seq]
    array set o {
        -mode starttls -cert server -auth {PLAIN LOGIN} -user "" -pass ""
        -no-starttls 0 -greeting-delay 0 -silent 0 -pipelining 1
        -size 52428800 -rcpt-reply {} -tls-protocols {}
        -host 127.0.0.1 -hostname provider.test -auth-in-clear 0 -port 0
        -token "" -xoauth2-refusal "535 5.7.3 Authentication unsuccessful"
    }
    set o(-extensions) default
    set script {}
    foreach {k v} $args {
        switch -- $k {
            -reply {
                if {[lindex $v 0] in $verbs} { set v [list $v] }
                foreach e $v { lappend script [script_entry $e] }
            }
            -close-at {
                if {[llength $v] == 2 && [string is integer [lindex $v 1]]} {
                    lappend script [script_entry [list [lindex $v 0] close [lindex $v 1]]]
                } else {
                    foreach verb $v { lappend script [script_entry [list $verb close]] }
                }
            }
            default {
                if {![info exists o($k)]} { error "provider::start: unknown option $k" }
                set o($k) $v
            }
        }
    }
    if {$o(-mode) ni {starttls implicit plain}} {
        error "provider::start: -mode must be starttls, implicit or plain"
    }
    if {$o(-extensions) eq "default"} {
        set o(-extensions) [list 8BITMIME "SIZE $o(-size)" ENHANCEDSTATUSCODES SMTPUTF8]
        if {$o(-pipelining)} { lappend o(-extensions) PIPELINING }
    }
    foreach k [array names o] { set P($p,[string range $k 1 end]) $o($k) }
    if {$o(-mode) ne "plain"} {
        set c $o(-cert)
        if {[llength $c] == 1} { set c [cert $c] }
        set P($p,certfile) [dict get $c cert]
        set P($p,keyfile) [dict get $c key]
    }
    set P($p,script) $script
    set P($p,connections) 0
    set P($p,chans) {}
    set P($p,messages) {}
    set P($p,transcript) {}
    set P($p,stamps) {}
    set P($p,flights) {}
    set P($p,auths) {}
    set P($p,bearers) {}
    set P($p,tls_errors) {}
    set P($p,timers) {}
    set P($p,listener) [socket -server [list provider::accept $p] -myaddr $o(-host) $o(-port)]
    set P($p,port) [lindex [chan configure $P($p,listener) -sockname] 2]
    lappend live $p
    return $p
}

proc provider::script_entry {e} {
    variable verbs
    lassign $e verb reply count
    set verb [string toupper $verb]
    if {$verb ni $verbs} { error "provider: unknown VERB \"$verb\" in script (known: $verbs)" }
    if {$count eq ""} { set count -1 }
    return [list $verb $reply $count]
}

proc provider::set_reply {p verb reply {count -1}} {
    variable P
    set verb [string toupper $verb]
    set kept {}
    foreach e $P($p,script) {
        if {[lindex $e 0] ne $verb} { lappend kept $e }
    }
    if {$reply ne ""} { lappend kept [script_entry [list $verb $reply $count]] }
    set P($p,script) $kept
}

# The scripted reply for VERB, used up once; "" when none applies.
proc provider::scripted {p verb} {
    variable P
    set i 0
    foreach e $P($p,script) {
        lassign $e v reply count
        if {$v eq $verb && $count != 0} {
            if {$count > 0} { lset P($p,script) $i 2 [expr {$count - 1}] }
            return $reply
        }
        incr i
    }
    return ""
}

# --- accessors -----------------------------------------------------------

proc provider::port {p} { return $provider::P($p,port) }
proc provider::host {p} { return $provider::P($p,host) }
proc provider::connections {p} { return $provider::P($p,connections) }
proc provider::transcript {p} { return $provider::P($p,transcript) }
proc provider::auths {p} { return $provider::P($p,auths) }
proc provider::bearers {p} { return $provider::P($p,bearers) }
proc provider::set_token {p token} { set provider::P($p,token) $token }
# Closes every open connection, as a provider dropping idle sessions does.
proc provider::drop_connections {p} {
    foreach ch $provider::P($p,chans) { drop $ch }
}
proc provider::tls_errors {p} { return $provider::P($p,tls_errors) }

proc provider::messages {p {all ""}} {
    variable P
    if {$all eq "-all"} { return $P($p,messages) }
    set out {}
    foreach m $P($p,messages) {
        if {[dict get $m accepted]} { lappend out $m }
    }
    return $out
}

proc provider::commands {p {conn ""}} {
    set out {}
    foreach e $provider::P($p,transcript) {
        if {$conn eq "" || [lindex $e 0] == $conn} { lappend out [lindex $e 1] }
    }
    return $out
}

proc provider::command_times {p glob} {
    set out {}
    foreach e $provider::P($p,transcript) t $provider::P($p,stamps) {
        if {[string match $glob [lindex $e 1]]} { lappend out $t }
    }
    return $out
}

proc provider::cleartext {p {conn ""}} {
    variable P
    set out ""
    for {set n 1} {$n <= $P($p,connections)} {incr n} {
        if {$conn eq "" || $n == $conn} { append out $P($p,clear,$n) }
    }
    return $out
}

proc provider::flights {p conn} {
    set groups {}
    set last ""
    foreach e $provider::P($p,flights) {
        lassign $e n read line
        if {$n != $conn} { continue }
        if {$read ne $last} { lappend groups {} }
        set last $read
        lset groups end [linsert [lindex $groups end] end $line]
    }
    return $groups
}
proc provider::received {p conn} { return $provider::P($p,raw,$conn) }
proc provider::conn {p conn} { return $provider::P($p,info,$conn) }

proc provider::open_connections {p} {
    variable P
    set n 0
    for {set i 1} {$i <= $P($p,connections)} {incr i} {
        if {![dict get $P($p,info,$i) closed]} { incr n }
    }
    return $n
}

proc provider::wait_messages {p n {timeout ""}} {
    wait_until {[llength [provider::messages $p]] >= $n} $timeout \
        "$n message(s) at provider $p (port $provider::P($p,port))"
    return [messages $p]
}

proc provider::wait_connections {p n {timeout ""}} {
    wait_until {$provider::P($p,connections) >= $n} $timeout \
        "$n connection(s) at provider $p"
}

proc provider::wait_command {p pattern {timeout ""}} {
    set found ""
    wait_until {[set found [provider::find_command $p $pattern]] ne ""} $timeout \
        "a command matching \"$pattern\" at provider $p"
    return $found
}

proc provider::find_command {p pattern} {
    foreach line [commands $p] {
        if {[string match $pattern $line]} { return $line }
    }
    return ""
}

proc provider::stop {p} {
    variable P; variable live
    if {![info exists P($p,listener)]} { return }
    catch {close $P($p,listener)}
    foreach ch $P($p,chans) { drop $ch }
    foreach id $P($p,timers) { after cancel $id }
    set live [lsearch -all -inline -not -exact $live $p]
    unset P($p,listener)
}

# --- harness hooks -------------------------------------------------------

proc provider::_cleanup {} {
    variable live
    foreach p $live { catch {stop $p} }
    return {}
}

proc provider::_report {} {
    variable P
    set out {}
    foreach key [lsort -dictionary [array names P *,port]] {
        set p [lindex [split $key ,] 0]
        set t "--- provider $p (port $P($p,port), $P($p,mode)): $P($p,connections) connection(s), [llength [messages $p]] message(s) accepted ---"
        set tr $P($p,transcript)
        if {[llength $tr] > 60} {
            append t "\n  ... [expr {[llength $tr] - 60}] earlier lines"
            set tr [lrange $tr end-59 end]
        }
        foreach e $tr { append t "\n  [lindex $e 0]: [escape [lindex $e 1] 200]" }
        foreach e $P($p,tls_errors) { append t "\n  TLS error on connection [lindex $e 0]: [lindex $e 1]" }
        lappend out $t
    }
    return $out
}

proc provider::_reset {} {
    variable P; variable C; variable live
    array unset P
    array unset C
    set live {}
}

# --- connections ---------------------------------------------------------

proc provider::accept {p ch addr port} {
    variable P; variable C
    set n [incr P($p,connections)]
    lappend P($p,chans) $ch
    chan configure $ch -blocking 0 -translation binary -buffering full
    array set C [list $ch,p $p $ch,n $n $ch,buf "" $ch,state greeting \
        $ch,tls 0 $ch,rejecting 0 $ch,reads 0]
    set P($p,clear,$n) ""
    set P($p,raw,$n) ""
    set P($p,info,$n) [dict create tls 0 tls_version "" cipher "" helo "" \
        auth_mech "" auth_user "" closed 0]
    reset_session $ch
    harness::wakeup
    if {$P($p,silent)} {
        fileevent $ch readable [list provider::readable $ch]
        set C($ch,state) silent
        return
    }
    if {$P($p,mode) eq "implicit"} {
        start_tls $ch [list provider::greet $ch]
    } else {
        fileevent $ch readable [list provider::readable $ch]
        greet $ch
    }
}

proc provider::greet {ch} {
    variable P; variable C
    set p $C($ch,p)
    if {$P($p,greeting-delay) > 0} {
        lappend P($p,timers) [after $P($p,greeting-delay) [list provider::send_greeting $ch]]
    } else {
        send_greeting $ch
    }
}

proc provider::send_greeting {ch} {
    variable P; variable C
    if {![info exists C($ch,p)]} { return }
    set p $C($ch,p)
    set r [scripted $p GREETING]
    if {$r eq "close"} { drop $ch; return }
    if {$r eq ""} { set r "220 $P($p,hostname) ESMTP fake provider" }
    if {![string match 2* $r]} { set C($ch,rejecting) 1 }
    set C($ch,state) cmd
    if {![reply $ch $r]} { return }
    process $ch
}

proc provider::reset_session {ch} {
    variable C
    set C($ch,helo) ""
    set C($ch,authed) 0
    set C($ch,auth_mech) ""
    set C($ch,auth_user) ""
    reset_transaction $ch
}

proc provider::reset_transaction {ch} {
    variable C
    set C($ch,inmail) 0
    set C($ch,from) ""
    set C($ch,params) ""
    set C($ch,rcpts) {}
    set C($ch,data) ""
}

proc provider::info_set {ch args} {
    variable P; variable C
    set p $C($ch,p)
    set n $C($ch,n)
    set P($p,info,$n) [dict merge $P($p,info,$n) [dict create {*}$args]]
}

# Closes a connection from our side (or after the peer went away).
proc provider::drop {ch} {
    variable C
    if {![info exists C($ch,p)]} { return }
    catch {fileevent $ch readable {}}
    catch {flush $ch}
    catch {close $ch}
    info_set $ch closed 1
    array unset C $ch,*
    harness::wakeup
}

# Sends one reply; TEXT may hold several lines separated by "\n".
# Returns 0 when the connection is gone (or was closed by a 421).
proc provider::reply {ch text} {
    set text [string trimright [string map [list "\r\n" "\n"] $text] "\n"]
    set wire [string map [list "\n" "\r\n"] $text]\r\n
    if {[catch {puts -nonewline $ch $wire; flush $ch}]} {
        drop $ch
        return 0
    }
    if {[string match 421* $text]} {
        drop $ch
        return 0
    }
    return 1
}

proc provider::readable {ch} {
    variable P; variable C
    if {![info exists C($ch,p)]} { return }
    set p $C($ch,p)
    set n $C($ch,n)
    if {[catch {read $ch} data]} {
        drop $ch
        return
    }
    append P($p,raw,$n) $data
    if {$data ne ""} { incr C($ch,reads) }
    if {!$C($ch,tls)} { append P($p,clear,$n) $data }
    append C($ch,buf) $data
    harness::wakeup
    if {$C($ch,state) ne "silent"} { process $ch }
    if {[info exists C($ch,p)] && [eof $ch]} { drop $ch }
}

# Consumes every complete line in the buffer, in the order the state asks.
proc provider::process {ch} {
    variable C
    set pos 0
    while {[info exists C($ch,p)]} {
        set state $C($ch,state)
        set buf $C($ch,buf)
        if {$state eq "data"} {
            if {[string range $buf $pos [expr {$pos + 2}]] eq ".\r\n"} {
                incr pos 3
                end_data $ch
                continue
            }
            set k [string first "\r\n.\r\n" $buf $pos]
            if {$k >= 0} {
                append C($ch,data) [string range $buf $pos [expr {$k + 1}]]
                set pos [expr {$k + 5}]
                end_data $ch
                continue
            }
            set j [string last "\r\n" $buf]
            if {$j >= $pos} {
                append C($ch,data) [string range $buf $pos [expr {$j + 1}]]
                set pos [expr {$j + 2}]
            }
            break
        }
        if {$state ni {cmd auth}} { break }
        set k [string first "\r\n" $buf $pos]
        if {$k < 0} { break }
        set line [string range $buf $pos [expr {$k - 1}]]
        set pos [expr {$k + 2}]
        if {$state eq "auth"} {
            auth_continue $ch $line
        } else {
            command $ch $line
        }
        if {[info exists C($ch,state)] && $C($ch,state) eq "starttls"} {
            # Anything pipelined after STARTTLS is discarded (it stays in
            # cleartext for the test to see), then TLS starts.
            set C($ch,buf) ""
            start_tls $ch [list provider::after_starttls $ch]
            return
        }
    }
    if {[info exists C($ch,buf)]} {
        set C($ch,buf) [string range $C($ch,buf) $pos end]
    }
}

proc provider::log_command {ch line} {
    variable P; variable C
    lappend P($C($ch,p),transcript) [list $C($ch,n) $line]
    lappend P($C($ch,p),stamps) [clock milliseconds]
    lappend P($C($ch,p),flights) [list $C($ch,n) $C($ch,reads) $line]
    harness::wakeup
}

proc provider::command {ch line} {
    variable P; variable C
    set p $C($ch,p)
    regexp {^(\S*)\s*(.*)$} $line -> verb arg
    set verb [string toupper $verb]
    if {$verb eq "AUTH"} {
        set shown [lrange [split $arg " "] 0 0]
        if {[llength [split $arg " "]] > 1} { lappend shown <redacted> }
        log_command $ch [join [list AUTH {*}$shown] " "]
    } else {
        log_command $ch $line
    }
    if {$C($ch,rejecting) && $verb ne "QUIT"} {
        reply $ch "503 5.5.1 Bad sequence: service not available"
        return
    }
    if {$verb in $provider::verbs && $verb ni {GREETING DOT}} {
        set r [scripted $p $verb]
        if {$r ne ""} {
            scripted_reply $ch $verb $arg $r
            return
        }
    }
    switch -- $verb {
        EHLO     { cmd_ehlo $ch $arg }
        HELO     { cmd_helo $ch $arg }
        STARTTLS { cmd_starttls $ch }
        AUTH     { cmd_auth $ch $arg }
        MAIL     { cmd_mail $ch $arg }
        RCPT     { cmd_rcpt $ch $arg }
        DATA     { cmd_data $ch }
        RSET     { reset_transaction $ch; reply $ch "250 2.0.0 Ok" }
        NOOP     { reply $ch "250 2.0.0 Ok" }
        VRFY     { reply $ch "252 2.5.2 Cannot VRFY user" }
        QUIT     { reply $ch "221 2.0.0 Bye"; drop $ch }
        default  { reply $ch "500 5.5.2 Command not recognized" }
    }
}

# A scripted reply replaces the normal handling; a success still has the
# command's effect so a session can go on.
proc provider::scripted_reply {ch verb arg r} {
    variable C
    if {$r eq "close"} { drop $ch; return }
    if {![reply $ch $r]} { return }
    set ok [string match {[23]*} $r]
    switch -- $verb {
        EHLO - HELO { if {$ok} { set C($ch,helo) $arg; info_set $ch helo $arg } }
        STARTTLS    { if {[string match 220* $r]} { set C($ch,state) starttls } }
        AUTH {
            if {$ok} {
                set C($ch,authed) 1
                set C($ch,auth_mech) [string toupper [lindex [split $arg " "] 0]]
            }
        }
        MAIL {
            if {$ok && [regexp -nocase {^FROM:<([^>]*)>\s*(.*)$} $arg -> from params]} {
                set C($ch,inmail) 1
                set C($ch,from) $from
                set C($ch,params) $params
            }
        }
        RCPT {
            if {$ok && [regexp -nocase {^TO:<([^>]*)>} $arg -> rcpt]} {
                lappend C($ch,rcpts) $rcpt
            }
        }
        DATA        { if {[string match 354* $r]} { set C($ch,state) data } }
        RSET        { if {$ok} { reset_transaction $ch } }
        QUIT        { drop $ch }
    }
}

proc provider::ehlo_lines {ch name} {
    variable P; variable C
    set p $C($ch,p)
    set lines [list "$P($p,hostname) Hello $name"]
    lappend lines {*}$P($p,extensions)
    if {$P($p,mode) eq "starttls" && !$C($ch,tls) && !$P($p,no-starttls)} {
        lappend lines STARTTLS
    }
    if {[auth_allowed $ch] && [llength $P($p,auth)]} {
        lappend lines "AUTH [join $P($p,auth) " "]"
    }
    set out {}
    set last [expr {[llength $lines] - 1}]
    set i 0
    foreach l $lines {
        lappend out "250[expr {$i == $last ? " " : "-"}]$l"
        incr i
    }
    return [join $out "\n"]
}

proc provider::auth_allowed {ch} {
    variable P; variable C
    set p $C($ch,p)
    expr {$P($p,mode) ne "starttls" || $C($ch,tls) || $P($p,auth-in-clear)}
}

proc provider::cmd_ehlo {ch arg} {
    variable C
    if {$arg eq ""} { reply $ch "501 5.5.4 Syntax: EHLO hostname"; return }
    reset_transaction $ch
    set C($ch,helo) $arg
    info_set $ch helo $arg
    reply $ch [ehlo_lines $ch $arg]
}

proc provider::cmd_helo {ch arg} {
    variable P; variable C
    if {$arg eq ""} { reply $ch "501 5.5.4 Syntax: HELO hostname"; return }
    reset_transaction $ch
    set C($ch,helo) $arg
    info_set $ch helo $arg
    reply $ch "250 $P($C($ch,p),hostname)"
}

proc provider::cmd_starttls {ch} {
    variable P; variable C
    set p $C($ch,p)
    if {$P($p,mode) ne "starttls" || $P($p,no-starttls)} {
        reply $ch "502 5.5.1 Command not implemented"
    } elseif {$C($ch,tls)} {
        reply $ch "503 5.5.1 TLS already active"
    } elseif {[reply $ch "220 2.0.0 Ready to start TLS"]} {
        set C($ch,state) starttls
    }
}

proc provider::after_starttls {ch} {
    variable C
    reset_session $ch
    set C($ch,state) cmd
    process $ch
}

# --- TLS -----------------------------------------------------------------

proc provider::start_tls {ch next} {
    variable P; variable C
    set p $C($ch,p)
    set C($ch,state) handshake
    fileevent $ch readable {}
    set opts [list -server 1 -certfile $P($p,certfile) -keyfile $P($p,keyfile) \
        -request 0 -require 0 \
        -command [list harness::tls_callback [list provider::tls_error $ch]]]
    if {[llength $P($p,tls-protocols)]} {
        foreach v {tls1 tls1.1 tls1.2 tls1.3} {
            lappend opts -$v [expr {$v in $P($p,tls-protocols)}]
        }
    }
    if {[catch {tls::import $ch {*}$opts} err]} {
        lappend P($p,tls_errors) [list $C($ch,n) "tls::import: $err"]
        drop $ch
        return
    }
    chan configure $ch -blocking 0 -translation binary -buffering full
    fileevent $ch readable [list provider::handshake $ch $next]
}

proc provider::tls_error {ch msg} {
    variable C
    if {[info exists C($ch,p)]} { set C($ch,tls_error) $msg }
}

proc provider::handshake {ch next} {
    variable P; variable C
    if {![info exists C($ch,p)]} { return }
    set p $C($ch,p)
    if {[catch {tls::handshake $ch} done]} {
        if {[string match -nocase "*temporarily unavailable*" $done]} { return }
        if {[info exists C($ch,tls_error)] && [string first $C($ch,tls_error) $done] < 0} {
            append done " (" $C($ch,tls_error) ")"
        }
        lappend P($p,tls_errors) [list $C($ch,n) $done]
        drop $ch
        return
    }
    if {!$done} { return }
    set st [tls::status $ch]
    set C($ch,tls) 1
    info_set $ch tls 1 tls_version [dict get $st version] cipher [dict get $st cipher]
    fileevent $ch readable [list provider::readable $ch]
    # Data that came with the end of the handshake may already be buffered.
    after idle [list provider::readable $ch]
    harness::wakeup
    {*}$next
}

# --- AUTH ----------------------------------------------------------------

proc provider::cmd_auth {ch arg} {
    variable P; variable C
    set p $C($ch,p)
    lassign [split $arg " "] mech initial
    set mech [string toupper $mech]
    if {$C($ch,helo) eq ""} { reply $ch "503 5.5.1 EHLO first"; return }
    if {![auth_allowed $ch]} {
        record_auth $ch $mech "" 0
        reply $ch "530 5.7.0 Must issue a STARTTLS command first"
        return
    }
    if {![llength $P($p,auth)]} { reply $ch "502 5.5.1 AUTH not available"; return }
    if {$C($ch,authed)} { reply $ch "503 5.5.1 Already authenticated"; return }
    if {$mech ni $P($p,auth) || $mech ni {PLAIN LOGIN XOAUTH2}} {
        reply $ch "504 5.5.4 Unrecognized authentication type"
        return
    }
    set C($ch,auth_try) $mech
    set C($ch,auth_login_user) ""
    if {$mech eq "XOAUTH2"} {
        auth_xoauth2 $ch $initial
    } elseif {$mech eq "PLAIN"} {
        if {$initial ne ""} { auth_plain $ch $initial; return }
        set C($ch,auth_step) plain
        set C($ch,state) auth
        reply $ch "334 "
    } else {
        if {$initial ne ""} {
            set C($ch,auth_step) user
            auth_continue $ch $initial 0
            return
        }
        set C($ch,auth_step) user
        set C($ch,state) auth
        reply $ch "334 VXNlcm5hbWU6"
    }
}

# One line of the AUTH exchange (a 334 continuation).
proc provider::auth_continue {ch line {log 1}} {
    variable C
    if {$log} { log_command $ch <redacted> }
    set C($ch,state) cmd
    if {$line eq "*"} { reply $ch "501 5.7.0 Authentication cancelled"; return }
    switch -- $C($ch,auth_step) {
        xoauth2_error { reply $ch "535 5.7.8 Username and Password not accepted" }
        plain { auth_plain $ch $line }
        user {
            if {[catch {binary decode base64 -strict $line} u]} {
                reply $ch "501 5.5.2 Cannot decode response"
                return
            }
            set C($ch,auth_login_user) $u
            set C($ch,auth_step) pass
            set C($ch,state) auth
            reply $ch "334 UGFzc3dvcmQ6"
        }
        pass {
            if {[catch {binary decode base64 -strict $line} pw]} {
                reply $ch "501 5.5.2 Cannot decode response"
                return
            }
            auth_check $ch LOGIN $C($ch,auth_login_user) $pw
        }
    }
}

proc provider::auth_plain {ch b64} {
    if {$b64 eq "="} { set b64 "" }
    if {[catch {binary decode base64 -strict $b64} raw]
            || [llength [set parts [split $raw "\0"]]] != 3} {
        reply $ch "501 5.5.2 Cannot decode response"
        return
    }
    auth_check $ch PLAIN [lindex $parts 1] [lindex $parts 2]
}

# SASL XOAUTH2: "user=U\x01auth=Bearer T\x01\x01", base64, as the initial response.
proc provider::auth_xoauth2 {ch b64} {
    variable P; variable C
    set p $C($ch,p)
    if {[catch {binary decode base64 -strict $b64} raw]
            || ![regexp {^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$} $raw -> user token]} {
        reply $ch "501 5.5.2 Cannot decode response"
        return
    }
    set ok [expr {$token eq $P($p,token) && ($P($p,user) eq "" || $user eq $P($p,user))}]
    lappend P($p,bearers) [dict create conn $C($ch,n) user $user token $token ok $ok]
    if {$ok} {
        set C($ch,authed) 1
        set C($ch,auth_mech) XOAUTH2
        set C($ch,auth_user) $user
        info_set $ch auth_mech XOAUTH2 auth_user $user
        record_auth $ch XOAUTH2 $user 1
        reply $ch "235 2.7.0 Authentication successful"
        return
    }
    record_auth $ch XOAUTH2 $user 0
    if {$P($p,xoauth2-refusal) eq "challenge"} {
        set C($ch,auth_step) xoauth2_error
        set C($ch,state) auth
        reply $ch "334 [binary encode base64 {{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}}]"
        return
    }
    reply $ch $P($p,xoauth2-refusal)
}

proc provider::auth_check {ch mech user pass} {
    variable P; variable C
    set p $C($ch,p)
    if {$P($p,user) eq "" || ($user eq $P($p,user) && $pass eq $P($p,pass))} {
        set C($ch,authed) 1
        set C($ch,auth_mech) $mech
        set C($ch,auth_user) $user
        info_set $ch auth_mech $mech auth_user $user
        record_auth $ch $mech $user 1
        reply $ch "235 2.7.0 Authentication successful"
    } else {
        record_auth $ch $mech $user 0
        reply $ch "535 5.7.8 Authentication credentials invalid"
    }
}

proc provider::record_auth {ch mech user ok} {
    variable P; variable C
    lappend P($C($ch,p),auths) [dict create conn $C($ch,n) mech $mech user $user \
        ok $ok tls $C($ch,tls)]
}

# --- the mail transaction ------------------------------------------------

proc provider::has_ext {p name} {
    foreach e $provider::P($p,extensions) {
        if {[string equal -nocase [lindex [split $e " "] 0] $name]} { return 1 }
    }
    return 0
}

proc provider::cmd_mail {ch arg} {
    variable P; variable C
    set p $C($ch,p)
    if {$C($ch,helo) eq ""} { reply $ch "503 5.5.1 EHLO first"; return }
    if {$C($ch,inmail)} { reply $ch "503 5.5.1 Nested MAIL command"; return }
    if {$P($p,user) ne "" && !$C($ch,authed)} {
        reply $ch "530 5.7.0 Authentication required"
        return
    }
    if {![regexp -nocase {^FROM:<([^<>]*)>((?: \S+)*)$} $arg -> from params]} {
        reply $ch "501 5.5.4 Syntax: MAIL FROM:<address>"
        return
    }
    foreach param [split [string trim $params] " "] {
        if {$param eq ""} { continue }
        set key [string toupper [lindex [split $param =] 0]]
        set val [join [lrange [split $param =] 1 end] =]
        # Each parameter is valid only with the extension that defines it.
        set needs {SIZE SIZE BODY 8BITMIME SMTPUTF8 SMTPUTF8 AUTH AUTH}
        if {![dict exists $needs $key]
                || ($key ne "AUTH" && ![has_ext $p [dict get $needs $key]])} {
            reply $ch "555 5.5.4 Unsupported parameter $key"
            return
        }
        if {$key eq "SIZE" && [string is integer -strict $val] && $val > $P($p,size)} {
            reply $ch "552 5.3.4 Message size exceeds fixed limit"
            return
        }
    }
    set C($ch,inmail) 1
    set C($ch,from) $from
    set C($ch,params) [string trim $params]
    reply $ch "250 2.1.0 Sender OK"
}

proc provider::cmd_rcpt {ch arg} {
    variable P; variable C
    set p $C($ch,p)
    if {!$C($ch,inmail)} { reply $ch "503 5.5.1 Need MAIL command"; return }
    if {![regexp -nocase {^TO:<([^<>]*)>((?: \S+)*)$} $arg -> rcpt]} {
        reply $ch "501 5.5.4 Syntax: RCPT TO:<address>"
        return
    }
    if {[dict exists $P($p,rcpt-reply) $rcpt]} {
        set r [dict get $P($p,rcpt-reply) $rcpt]
        if {$r eq "close"} { drop $ch; return }
        if {[string match 2* $r]} { lappend C($ch,rcpts) $rcpt }
        reply $ch $r
        return
    }
    lappend C($ch,rcpts) $rcpt
    reply $ch "250 2.1.5 Recipient OK"
}

proc provider::cmd_data {ch} {
    variable C
    if {!$C($ch,inmail)} { reply $ch "503 5.5.1 Need MAIL command"; return }
    if {![llength $C($ch,rcpts)]} { reply $ch "554 5.5.1 No valid recipients"; return }
    if {[reply $ch "354 End data with <CR><LF>.<CR><LF>"]} {
        set C($ch,state) data
    }
}

proc provider::end_data {ch} {
    variable P; variable C
    set p $C($ch,p)
    set n $C($ch,n)
    log_command $ch .
    set C($ch,state) cmd
    set r [scripted $p DOT]
    if {$r eq ""} {
        set r "250 2.0.0 Ok: queued as P${n}M[expr {[llength $P($p,messages)] + 1}]"
    }
    set info $P($p,info,$n)
    lappend P($p,messages) [dict create \
        from $C($ch,from) rcpts $C($ch,rcpts) data $C($ch,data) \
        params $C($ch,params) auth_mech $C($ch,auth_mech) \
        auth_user $C($ch,auth_user) tls $C($ch,tls) \
        tls_version [dict get $info tls_version] conn $n helo $C($ch,helo) \
        reply [expr {$r eq "close" ? "" : $r}] \
        accepted [expr {[string match 2* $r]}]]
    reset_transaction $ch
    harness::wakeup
    if {$r eq "close"} { drop $ch; return }
    reply $ch $r
}
