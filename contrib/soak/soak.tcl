# soak.tcl: the daemon under SIGKILL, in queue or hybrid delivery. SMTP
# clients, driven by the event loop, submit messages while the daemon is
# killed with SIGKILL at random moments and restarted on the same spool
# (the provider stays up all along). A client treats a dropped connection
# or any reply other than "250 ... queued as" as "not acknowledged" and
# submits the message again later (a new try, X-Try: K), like an
# application that retries. New messages keep coming while the kills go
# on; after the last kill the clients only retry.
#
# The provider answers 451 to its first 12 ends of data, so some messages
# are deferred and their retry state is on disk across the kills.
#
# Checked once the queue has drained (soak::run):
#   - every acknowledged try (message I, try K) reached the provider;
#   - nothing reached it that was not submitted (its DATA at least begun),
#     nor a try the daemon explicitly refused;
#   - every copy received is whole: exactly the bytes submitted;
#   - queue/, tmp/ and failed/ are empty;
#   - duplicates (at-least-once is the contract) are reported, and bounded
#     by what causes them: a kill between the provider's 250 and the spool
#     update repeats at most the deliveries in flight (max_connections per
#     kill), and a client that got no answer and submits again adds at
#     most one copy per unanswered try.
#
# Used by tests/queue/crash.test (50 kills per mode) and by
# contrib/soak/soak.sh (1,000 kills). The seed is printed; the timing of
# the processes still varies from run to run.
#
#   soak::run MODE CLIENTS KILLS SEED ?MAX_LINES?   (inside a test)

namespace eval soak {
    variable S
    variable port ""
    variable in_flight 8   ;# max_connections: what one kill can repeat at most
    variable max_lines 400 ;# the largest message: MAX_LINES x 70 bytes
}

proc soak::config {mode spool} {
    return "\[relay\]
listen = 127.0.0.1:0
delivery = $mode
hostname = relay.test.example
spool = $spool
control =
drain_timeout = 0s
providers = primary

\[queue\]
retry_initial = 1s
retry_max = 2s

\[provider primary\]
host = 127.0.0.1
ports = $soak::S(provider_port)/starttls
username = u
password = secret
tls_ca_file = [dict get [cert ca] cert]
connect_timeout = 2s
greeting_timeout = 2s
max_connections = $soak::in_flight
"
}

# Message I, try K: distinct sizes (about 100 bytes to max_lines x 70
# bytes) so that kills land in every phase, ending with a known last line.
proc soak::body {i k} {
    variable max_lines
    set n [expr {($i * 7919) % $max_lines}]
    set lines [list "Subject: crash-$i" "Message-ID: <crash-$i@client.test>" "X-Try: $k" ""]
    set fill [string repeat [string index abcdefghij [expr {$i % 10}]] 50]
    for {set l 0} {$l < $n} {incr l} {
        lappend lines [format "crash-%d line %04d %s" $i $l $fill]
    }
    lappend lines "END crash-$i"
    return [join $lines "\r\n"]
}

# ---- the clients ----------------------------------------------------------

proc soak::init {nclients} {
    variable S
    array unset S
    set S(n) 0                         ;# messages created so far
    set S(kills_done) 0                ;# no new message once the kills are over
    set S(pending) {}
    set S(acked) [dict create]         ;# I -> K
    set S(submitted) [dict create]     ;# "I K" -> 1 (DATA begun)
    set S(refused) [dict create]       ;# "I K" -> reply (explicit non-250 after DATA)
    set S(unacked) 0                   ;# tries that ended without an answer
    set S(connects) 0
    set S(stop) 0
    set S(clients) {}
    for {set c 0} {$c < $nclients} {incr c} {
        lappend S(clients) $c
        set S($c,chan) ""
        set S($c,msg) ""
        set S($c,timer) ""
        set S($c,timeout) ""
        set S($c,finished) 0
        later $c [expr {int(rand() * 20)}]
    }
}

# The clients keep the daemon busy with new messages for as long as the
# kills go on; after that they only retry what was not acknowledged.
proc soak::refill {} {
    variable S
    if {![llength $S(pending)] && !$S(kills_done)} {
        set i $S(n)
        incr S(n)
        set S(tries,$i) 0
        lappend S(pending) $i
    }
}

proc soak::later {c ms} {
    variable S
    after cancel $S($c,timer)
    set S($c,timer) [after $ms [list soak::connect $c]]
}

proc soak::connect {c} {
    variable S; variable port
    set S($c,timer) ""
    if {$S(stop)} { return }
    refill
    if {![llength $S(pending)]} {
        # Nothing to send now; others may still give a message back.
        if {[dict size $S(acked)] == $S(n)} {
            set S($c,finished) 1
            harness::wakeup
            return
        }
        later $c 50
        return
    }
    if {$port eq "" || [catch {socket -async 127.0.0.1 $port} ch]} {
        later $c [expr {20 + int(rand() * 30)}]
        return
    }
    incr S(connects)
    chan configure $ch -blocking 0 -translation binary -buffering full
    set S($c,chan) $ch
    set S($c,buf) ""
    set S($c,state) connecting
    set S($c,left) [expr {1 + int(rand() * 5)}]   ;# messages on this connection
    fileevent $ch writable [list soak::connected $c $ch]
    arm $c
}

proc soak::arm {c} {
    variable S
    after cancel $S($c,timeout)
    set S($c,timeout) [after 10000 [list soak::drop $c "no reply in 10 s"]]
}

proc soak::connected {c ch} {
    variable S
    if {$S($c,chan) ne $ch} { return }
    fileevent $ch writable {}
    if {[catch {chan configure $ch -error} err] || $err ne ""} {
        drop $c "connect: $err"
        return
    }
    set S($c,state) greeting
    fileevent $ch readable [list soak::readable $c $ch]
}

# The connection is gone (or given up): the message in flight, if any, is
# not acknowledged and goes back to the pending list.
proc soak::drop {c why} {
    variable S
    after cancel $S($c,timeout)
    if {$S($c,chan) ne ""} {
        catch {fileevent $S($c,chan) readable {}}
        catch {close $S($c,chan)}
        set S($c,chan) ""
    }
    if {$S($c,msg) ne ""} {
        incr S(unacked)
        lappend S(pending) $S($c,msg)
        set S($c,msg) ""
    }
    later $c [expr {10 + int(rand() * 40)}]
}

proc soak::send {c bytes} {
    variable S
    if {[catch {puts -nonewline $S($c,chan) $bytes; flush $S($c,chan)} err]} {
        drop $c "write: $err"
        return 0
    }
    arm $c
    return 1
}

proc soak::readable {c ch} {
    variable S
    if {$S($c,chan) ne $ch} { return }
    if {[catch {read $ch} data]} {
        drop $c "read: $data"
        return
    }
    append S($c,buf) $data
    while {$S($c,chan) eq $ch} {
        set k [string first "\r\n" $S($c,buf)]
        if {$k < 0} { break }
        set line [string range $S($c,buf) 0 [expr {$k - 1}]]
        set S($c,buf) [string range $S($c,buf) [expr {$k + 2}] end]
        if {[string index $line 3] eq "-"} { continue }
        step $c [string range $line 0 2] $line
    }
    if {$S($c,chan) eq $ch && [eof $ch]} { drop $c eof }
}

proc soak::next_message {c} {
    variable S
    refill
    if {$S($c,left) <= 0 || ![llength $S(pending)]} {
        set S($c,state) quit
        send $c "QUIT\r\n"
        return
    }
    incr S($c,left) -1
    set i [lindex $S(pending) 0]
    set S(pending) [lrange $S(pending) 1 end]
    set S($c,msg) $i
    set S($c,try) [incr S(tries,$i)]
    set S($c,state) mail
    send $c "MAIL FROM:<app@client.test>\r\n"
}

proc soak::step {c code line} {
    variable S
    set i $S($c,msg)
    switch -- $S($c,state) {
        greeting {
            if {$code ne "220"} { drop $c "greeting: $line"; return }
            set S($c,state) ehlo
            send $c "EHLO crash.test\r\n"
        }
        ehlo {
            if {$code ne "250"} { drop $c "EHLO: $line"; return }
            next_message $c
        }
        mail {
            if {$code ne "250"} { drop $c "MAIL: $line"; return }
            set S($c,state) rcpt
            send $c "RCPT TO:<rcpt@example.net>\r\n"
        }
        rcpt {
            if {$code ne "250"} { drop $c "RCPT: $line"; return }
            set S($c,state) data
            send $c "DATA\r\n"
        }
        data {
            if {$code ne "354"} { drop $c "DATA: $line"; return }
            set S($c,state) dot
            dict set S(submitted) "$i $S($c,try)" 1
            send $c "[body $i $S($c,try)]\r\n.\r\n"
        }
        dot {
            # Spooled ("queued as ID"), or in hybrid delivered live
            # ("queued as ID (provider: ...)").
            if {[regexp {^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}( \(provider: .*\))?$} $line]} {
                dict set S(acked) $i $S($c,try)
            } else {
                dict set S(refused) "$i $S($c,try)" $line
                lappend S(pending) $i
            }
            set S($c,msg) ""
            harness::wakeup
            next_message $c
        }
        quit {
            drop $c quit
        }
        default {
            drop $c "unexpected reply in state $S($c,state): $line"
        }
    }
}

proc soak::all_finished {} {
    variable S
    foreach c $S(clients) {
        if {!$S($c,finished)} { return 0 }
    }
    return 1
}

proc soak::stop_clients {} {
    variable S
    set S(stop) 1
    foreach c $S(clients) {
        after cancel $S($c,timer)
        after cancel $S($c,timeout)
        if {$S($c,chan) ne ""} { catch {close $S($c,chan)} }
        set S($c,chan) ""
    }
}

# Message files (and anything else) left in a spool subdirectory.
proc soak::files {dir} {
    lsort [glob -nocomplain -directory $dir -tails *]
}

# True once queue/ holds no message and the provider's count has not
# changed for a second.
proc soak::drained {p spool} {
    variable S
    set n [llength [provider::messages $p -all]]
    set now [clock milliseconds]
    if {![info exists S(last_count)] || $S(last_count) != $n} {
        set S(last_count) $n
        set S(last_change) $now
        return 0
    }
    set msgs [lsearch -all -inline -regexp [files $spool/queue] {^[0-9A-Z]{12}$}]
    expr {![llength $msgs] && $now - $S(last_change) >= 1000}
}

# Kills the daemon KILLS times at random moments (50 to 400 ms apart) while
# CLIENTS clients submit, waits for the queue to drain, then checks what the
# provider received (see the top of this file). Prints one summary line.
proc soak::run {mode clients kills seed {max_lines 400}} {
    variable S
    set soak::max_lines $max_lines
    puts "soak: mode $mode, $clients clients, $kills kills, seed $seed"
    expr {srand($seed)}

    set p [provider::start -mode starttls -user u -pass secret \
        -reply {DOT "451 4.3.0 try again later" 12}]
    init $clients
    set S(provider_port) [provider::port $p]
    set spool [file join [testdir] spool]
    set conf [config $mode $spool]
    set d [daemon::start $conf]
    set soak::port [daemon::port $d]
    set t0 [clock milliseconds]

    for {set k 1} {$k <= $kills} {incr k} {
        pause [expr {50 + int(rand() * 351)}]
        set soak::port ""
        daemon::signal $d KILL
        assert_equal SIGKILL [daemon::wait_exit $d 5000] "daemon $d after SIGKILL"
        set d [daemon::start $conf]
        set soak::port [daemon::port $d]
    }
    set S(kills_done) 1
    set t_kills [expr {[clock milliseconds] - $t0}]

    wait_until {[all_finished]} 60000 "all $S(n) messages acknowledged\
        (acknowledged so far: [dict size $S(acked)])"
    set t_acked [expr {[clock milliseconds] - $t0}]
    wait_drained $p $spool
    stop_clients
    assert_equal 0 [daemon::stop $d] "exit status of the last daemon on SIGTERM"
    check $p $spool $mode $kills [list kills_over=${t_kills}ms all_acked_after=${t_acked}ms \
        total=[expr {[clock milliseconds] - $t0}]ms]
}

# Waits for drained: as long as the provider keeps receiving, however
# long a large backlog takes; a minute without a message is a failure.
proc soak::wait_drained {p spool} {
    while 1 {
        set before [llength [provider::messages $p -all]]
        if {![catch {wait_until {[drained $p $spool]} 60000 "the queue to drain"} err]} { return }
        if {[llength [provider::messages $p -all]] == $before} {
            harness::fail "the queue did not drain: nothing delivered for 60 s\
                ([llength [lsearch -all -inline -regexp [files $spool/queue] {^[0-9A-Z]{12}$}]] messages in queue/)"
        }
    }
}

proc soak::check {p spool mode kills timing} {
    variable S
    set got [dict create]          ;# "I K" -> copies accepted
    set seen [dict create]         ;# "I K" -> copies, 451s included
    set bad {}
    set provider_451 0
    foreach m [provider::messages $p -all] {
        set data [dict get $m data]
        if {![regexp {^Subject: crash-(\d+)\r\nMessage-ID: <crash-\d+@client\.test>\r\nX-Try: (\d+)\r\n} $data -> i k]} {
            lappend bad "unknown message: [escape $data 200]"
            continue
        }
        if {$data ne "[body $i $k]\r\n"} {
            lappend bad "crash-$i try $k: not the bytes submitted ([string length $data] bytes,\
                ends [escape [string range $data end-40 end]])"
        }
        dict incr seen "$i $k"
        if {![dict get $m accepted]} {
            incr provider_451
            continue
        }
        dict incr got "$i $k"
        if {[dict get $m from] ne "app@client.test" || [dict get $m rcpts] ne "rcpt@example.net"} {
            lappend bad "crash-$i try $k: envelope [dict get $m from] -> [dict get $m rcpts]"
        }
    }
    set received [llength [provider::messages $p]]
    set per_msg [dict create]      ;# I -> copies of any try
    set same_try_dups 0
    dict for {ik n} $got {
        dict incr per_msg [lindex $ik 0] $n
        if {$n > 1} { incr same_try_dups [expr {$n - 1}] }
    }
    set dups [expr {$received - [dict size $per_msg]}]
    set lost {}
    dict for {i k} $S(acked) {
        if {![dict exists $got "$i $k"]} { lappend lost "crash-$i (try $k)" }
    }
    set tmp [files $spool/tmp]
    puts "soak: mode=$mode kills=$kills messages=$S(n) acknowledged=[dict size $S(acked)]\
        acknowledged_but_missing=[llength $lost] received=$received distinct=[dict size $per_msg]\
        duplicates=$dups (same try: $same_try_dups, resubmitted after no answer: [expr {$dups - $same_try_dups}])\
        left_in_tmp=[llength $tmp] unanswered_tries=$S(unacked) refused_tries=[dict size $S(refused)]\
        connections=$S(connects) provider_451=$provider_451 [join $timing]"

    assert_equal {} [join $bad "\n"] "messages at the provider"
    assert_equal {} $lost "acknowledged but never delivered"
    assert_equal $S(n) [dict size $S(acked)] "messages acknowledged"
    # Nothing arrived that was not submitted, or that the daemon refused.
    set unsent {}
    set refused {}
    dict for {ik n} $seen {
        if {![dict exists $S(submitted) $ik]} { lappend unsent $ik }
    }
    dict for {ik n} $got {
        if {[dict exists $S(refused) $ik]} { lappend refused "$ik ([dict get $S(refused) $ik])" }
    }
    assert_equal {} $unsent "tries delivered but never submitted"
    assert_equal {} $refused "tries delivered although the daemon refused them"
    assert_equal {} [files $spool/queue] "files left in queue/"
    assert_equal {} $tmp "files left in tmp/"
    assert_equal {} [files $spool/failed] "files left in failed/"
    assert {$same_try_dups <= $kills * $soak::in_flight} \
        "$same_try_dups copies of the same try: more than the $soak::in_flight deliveries in flight at each of $kills kills"
    assert {$dups - $same_try_dups <= $S(unacked)} \
        "[expr {$dups - $same_try_dups}] copies from tries submitted again: more than the $S(unacked) unanswered tries"
}
