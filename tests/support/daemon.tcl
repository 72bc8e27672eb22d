# daemon.tcl: starting and stopping subrelayd in tests.
#
#   daemon::start CONFIG_TEXT ?-args LIST? ?-env {NAME VALUE ...}?
#                 ?-unset NAMES? ?-wait 0|1? ?-listeners N? ?-timeout MS?
#       Writes CONFIG_TEXT to TESTDIR/dN.ini, runs `subrelayd -c FILE ARGS...`
#       in the background with stdout and stderr going to TESTDIR/dN.log, and
#       (unless -wait 0) waits until it has logged `listening address=IP:PORT`
#       once per configured listen address (counted from [relay] listen or
#       -o relay.listen=..., or given by -listeners). Fails at once, with the
#       log, if the daemon exits first. Skips the test when the binary is
#       not built. Unless the test sets them: its own control socket and
#       spool, and add_missing_headers = no (provider bytes compare exactly).
#       -> handle
#   daemon::port D ?INDEX?    daemon::host D ?INDEX?   (listener INDEX, from 0)
#   daemon::addr D ?INDEX?    "IP:PORT" as logged
#   daemon::listeners D       list of {IP PORT}
#   daemon::pid D   daemon::config D (the INI path)   daemon::logfile D
#   daemon::log D ?MARK?      log text so far (from byte offset MARK)
#   daemon::mark D            the current log size, for log/wait_log MARK
#   daemon::wait_log D REGEXP ?TIMEOUT_MS? ?MARK?  -> the first matching line
#   daemon::alive D           1 while it runs
#   daemon::metric D NAME     a series from D's /metrics (relay.metrics set),
#                             labels included, e.g. {x_total{result="ok"}}; 0 if absent
#   daemon::signal D SIG      e.g. HUP
#   daemon::wait_exit D ?TIMEOUT_MS?  waits for it to exit -> exit code
#   daemon::stop D            SIGTERM, up to 10 s, then SIGKILL -> exit code
#   Exit codes are numbers, or the signal name (SIGKILL, SIGSEGV...) that
#   ended the process.
#   daemon::run_cli ARGS ?-env {NAME VALUE ...}? ?-timeout MS?
#       one-shot run (-t, -V, -h, --probe) under Expect on a pty
#       -> dict {code CODE stdout TEXT stderr TEXT}  (pty CRLF turned into LF)
#   daemon::binary            the subrelayd command (a list); a test may set
#                             daemon::binary_override to a stand-in command
#                             (reset after each test)
# After each test the runner stops leftover daemons; a daemon that crashed
# (killed by a signal other than TERM/KILL/INT, or a sanitizer report in
# its log) or that did not stop on SIGTERM fails the test. Logs of every
# daemon are printed when a test fails.

namespace eval daemon {
    variable seq 0
    variable D            ;# "$d,key"
    variable all {}       ;# daemons of the current test
    variable binary_override ""
    variable stop_timeout 10000
}
harness::register_module daemon

proc daemon::binary {} {
    variable binary_override
    if {$binary_override ne ""} { return $binary_override }
    return [file join $::harness::builddir subrelayd]
}

proc daemon::need_binary {} {
    set bin [binary]
    if {![file executable [lindex $bin 0]]} { skip "subrelayd not built ($bin)" }
    return $bin
}

proc daemon::start {config args} {
    variable D; variable seq; variable all
    array set o {-args {} -env {} -unset {} -wait 1 -listeners "" -timeout ""}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "daemon::start: unknown option $k" }
        set o($k) $v
    }
    set bin [need_binary]
    set d d[incr seq]
    set conf [tmpfile $d.ini $config]
    set log [file join [testdir] $d.log]
    set cmd [list env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES]
    foreach n $o(-unset) { lappend cmd -u $n }
    foreach {n v} $o(-env) { lappend cmd $n=$v }
    lappend cmd {*}$bin -c $conf {*}$o(-args)
    # Every daemon gets its own control socket and spool unless the test
    # sets them (in its file or with -o), so daemons of one run never meet
    # at the default paths.
    if {![regexp -line {^\s*control\s*=} $config] && ![string match *relay.control=* $o(-args)]} {
        lappend cmd -o relay.control=[file join $harness::rundir ctl-$d.sock]
    }
    if {![regexp -line {^\s*spool\s*=} $config] && ![string match *relay.spool=* $o(-args)]} {
        lappend cmd -o relay.spool=[file join [testdir] $d.spool]
    }
    # Tests compare the bytes the provider receives with the bytes sent:
    # the message fix-ups (Received:, Date:, Message-ID:) are off unless
    # the test sets add_missing_headers (tests/queue/fixups.test does).
    if {![regexp -line {^\s*add_missing_headers\s*=} $config] &&
        ![string match *relay.add_missing_headers=* $o(-args)]} {
        lappend cmd -o relay.add_missing_headers=no
    }
    # stdin is a pipe we keep open; stdout and stderr go straight to the
    # log file, never through a pipe that could fill up.
    set ch [open |[list {*}$cmd >& $log] w]
    set D($d,chan) $ch
    set D($d,pid) [lindex [::pid $ch] 0]
    set D($d,conf) $conf
    set D($d,log) $log
    set D($d,cmd) $cmd
    set D($d,listeners) {}
    set D($d,addrs) {}
    set D($d,killed) 0
    lappend all $d
    if {!$o(-wait)} { return $d }

    set want $o(-listeners)
    if {$want eq ""} { set want [count_listen $config $o(-args)] }
    # relay.log_format = json writes the same line as an object.
    set re {(?:listening address=|"msg":"listening","address":")([^\s"]+)}
    set addrs {}
    wait_until {
        [llength [set addrs [regexp -all -inline -- $re [daemon::log $d]]]] / 2 >= $want
        || ![daemon::alive $d]
    } $o(-timeout) "$want listening line(s) from subrelayd"
    if {[llength $addrs] / 2 < $want} {
        set code [wait_exit $d 2000]
        harness::fail "subrelayd exited (status $code) before listening; log:\n[log $d]"
    }
    foreach {-> a} $addrs {
        lappend D($d,addrs) $a
        if {![regexp {^\[?(.*?)\]?:([0-9]+)$} $a -> host port]} {
            harness::fail "cannot parse listening address \"$a\""
        }
        lappend D($d,listeners) [list $host $port]
    }
    return $d
}

# How many listen addresses the configuration names (1 when it names none).
proc daemon::count_listen {config cli} {
    set value ""
    set section ""
    set inlisten 0
    foreach line [split $config "\n"] {
        if {[regexp {^\s*[;#]} $line] || [string trim $line] eq ""} { continue }
        if {$inlisten && [regexp {^\s+\S} $line]} {
            append value "," [lindex [split $line ";"] 0]
            continue
        }
        set inlisten 0
        if {[regexp {^\s*\[([^\]]*)\]} $line -> section]} {
            set section [string trim $section]
            continue
        }
        if {$section eq "relay" && [regexp {^\s*listen\s*[=:](.*)$} $line -> v]} {
            set value [lindex [split $v ";"] 0]
            set inlisten 1
        }
    }
    foreach {flag arg} $cli {
        if {$flag eq "-o" && [regexp {^relay\.listen=(.*)$} $arg -> v]} { set value $v }
    }
    set n 0
    foreach item [split $value ,] {
        if {[string trim $item] ne ""} { incr n }
    }
    return [expr {$n ? $n : 1}]
}

proc daemon::pid {d} { return $daemon::D($d,pid) }
proc daemon::config {d} { return $daemon::D($d,conf) }
proc daemon::logfile {d} { return $daemon::D($d,log) }
proc daemon::listeners {d} { return $daemon::D($d,listeners) }

proc daemon::listener {d index} {
    variable D
    set l [lindex $D($d,listeners) $index]
    if {$l eq ""} { harness::fail "daemon $d has no listener $index (it has: $D($d,addrs))" }
    return $l
}
proc daemon::port {d {index 0}} { lindex [listener $d $index] 1 }
proc daemon::host {d {index 0}} { lindex [listener $d $index] 0 }
proc daemon::addr {d {index 0}} { listener $d $index; lindex $daemon::D($d,addrs) $index }

proc daemon::log {d {mark 0}} {
    variable D
    if {[catch {open $D($d,log) r} f]} { return "" }
    chan configure $f -encoding utf-8 -translation lf
    if {$mark > 0} {
        chan configure $f -translation binary
        seek $f $mark
        set text [encoding convertfrom utf-8 [read $f]]
    } else {
        set text [read $f]
    }
    ::close $f
    return $text
}

proc daemon::mark {d} {
    variable D
    if {[catch {file size $D($d,log)} n]} { return 0 }
    return $n
}

proc daemon::wait_log {d re {timeout ""} {mark 0}} {
    set line ""
    wait_until {[daemon::find_line $d $re $mark line] || ![daemon::alive $d]} \
        $timeout "a log line matching {$re} from daemon $d"
    if {$line eq "" && ![find_line $d $re $mark line]} {
        harness::fail "daemon $d exited before logging a line matching {$re}\
            (status [wait_exit $d 2000]); log:\n[log $d]"
    }
    return $line
}

proc daemon::find_line {d re mark var} {
    upvar 1 $var line
    foreach l [split [log $d $mark] "\n"] {
        if {[regexp -- $re $l]} { set line $l; return 1 }
    }
    return 0
}

# METHOD PATH on the metrics listener of daemon D -> {status body}.
proc daemon::http {d method path} {
    regexp {metrics address=([0-9.]+):([0-9]+)} [wait_log $d {metrics address=\S+}] -> host port
    set ch [::socket $host $port]
    chan configure $ch -translation binary
    puts -nonewline $ch "$method $path HTTP/1.0\r\n\r\n"
    flush $ch
    chan configure $ch -blocking 0
    variable http_body ""
    variable http_done 0
    fileevent $ch readable [list apply {{ch} {
        append daemon::http_body [read $ch]
        if {[eof $ch]} { set daemon::http_done 1 }
        harness::wakeup
    }} $ch]
    wait_until {$daemon::http_done} 5000 "the metrics listener's reply to $method $path"
    close $ch
    set data $daemon::http_body
    if {![regexp {^HTTP/1.1 ([0-9]+)} $data -> status]} {
        harness::fail "not an HTTP reply to $method $path: [escape $data]"
    }
    return [list $status [string range $data [expr {[string first "\r\n\r\n" $data] + 4}] end]]
}

# A value from daemon D's /metrics (its configuration enables relay.metrics);
# NAME is the series as printed, labels included; 0 when absent.
proc daemon::metric {d name} {
    lassign [http $d GET /metrics] status body
    foreach line [split $body "\n"] {
        if {[string first "$name " $line] == 0} { return [string trim [lindex [split $line " "] end]] }
    }
    return 0
}

proc daemon::alive {d} {
    variable D
    if {[info exists D($d,code)]} { return 0 }
    expr {![harness::exited $D($d,pid)]}
}

proc daemon::signal {d sig} {
    variable D
    if {[info exists D($d,code)]} { harness::fail "daemon $d already exited ($D($d,code))" }
    harness::kill $sig $D($d,pid)
}

proc daemon::reap {d} {
    variable D
    if {![info exists D($d,code)]} {
        set D($d,code) [harness::reap $D($d,chan)]
    }
    return $D($d,code)
}

proc daemon::wait_exit {d {timeout ""}} {
    variable D
    if {[info exists D($d,code)]} { return $D($d,code) }
    wait_until {![daemon::alive $d]} $timeout "daemon $d (pid $D($d,pid)) to exit"
    return [reap $d]
}

proc daemon::stop {d} {
    variable D; variable stop_timeout
    if {[info exists D($d,code)]} { return $D($d,code) }
    set D($d,stop_error) ""
    if {[alive $d] && [catch {harness::kill TERM $D($d,pid)} err]} { set D($d,stop_error) $err }
    # Not wait_until: this also runs in cleanup, after the deadline passed.
    set end [expr {[clock milliseconds] + $stop_timeout}]
    while {[alive $d] && [clock milliseconds] < $end} { harness::pump 20 }
    if {[alive $d]} {
        set D($d,killed) 1
        if {[catch {harness::kill KILL $D($d,pid)} err]} { set D($d,stop_error) $err }
        set end [expr {[clock milliseconds] + 5000}]
        while {[alive $d] && [clock milliseconds] < $end} { harness::pump 20 }
    }
    if {[alive $d]} {
        # Never wait for a process that is still there: closing its
        # channel without blocking leaves it to Tcl to reap later.
        catch {chan configure $D($d,chan) -blocking 0}
        catch {close $D($d,chan)}
        set D($d,code) running
        return running
    }
    return [reap $d]
}

proc daemon::_cleanup {} {
    variable D; variable all; variable stop_timeout
    set problems {}
    foreach d $all {
        set code [stop $d]
        if {$code eq "running"} {
            lappend problems "daemon $d (pid $D($d,pid)) could not be stopped: $D($d,stop_error)"
        } elseif {$D($d,killed)} {
            lappend problems "daemon $d did not exit within [expr {$stop_timeout / 1000}] s\
                of SIGTERM and was killed"
        } elseif {[string match SIG* $code] && $code ni {SIGTERM SIGKILL SIGINT}} {
            lappend problems "daemon $d crashed: $code"
        }
        set text [log $d]
        foreach re {{ERROR: AddressSanitizer} {ERROR: LeakSanitizer} {runtime error:}
                    {ThreadSanitizer}} {
            if {[regexp -- $re $text]} {
                lappend problems "daemon $d: sanitizer report in its log"
                break
            }
        }
    }
    return $problems
}

proc daemon::_report {} {
    variable D; variable all
    set out {}
    set shown $all
    if {[llength $all] > 10} {
        # A soak starts hundreds: the last ones tell what went wrong.
        set shown [lrange $all end-4 end]
        lappend out "--- logs of daemons [lindex $all 0] to [lindex $all end-5] not shown ---"
    }
    foreach d $shown {
        set lines [split [string trimright [log $d] "\n"] "\n"]
        if {[llength $lines] > 300} {
            set lines [list "... [expr {[llength $lines] - 300}] earlier lines" \
                {*}[lrange $lines end-299 end]]
        }
        set text [join $lines "\n"]
        set code [expr {[info exists D($d,code)] ? $D($d,code) : "?"}]
        lappend out "--- daemon $d log ($D($d,log), exit status $code) ---\n$text\n--- end of $d log ---"
    }
    return $out
}

proc daemon::_reset {} {
    variable D; variable all; variable binary_override
    array unset D
    set all {}
    set binary_override ""
}

# --- one-shot runs under Expect -------------------------------------------

proc daemon::run_cli {cliargs args} {
    array set o {-env {} -timeout ""}
    foreach {k v} $args {
        if {![info exists o($k)]} { error "daemon::run_cli: unknown option $k" }
        set o($k) $v
    }
    if {$o(-timeout) eq ""} { set o(-timeout) $::harness::default_timeout }
    set bin [need_binary]
    set err [file join [testdir] cli-[incr daemon::seq].stderr]
    set envs [list SUBRELAY_TEST_STDERR=$err]
    foreach {n v} $o(-env) { lappend envs $n=$v }
    # The pty carries stdout; the shell sends stderr to a file.
    # Expect closes the pty at eof, which a program still exiting (a tclsh
    # stand-in flushes stdout early) would get as SIGHUP: ignore it.
    set spawned [spawn -noecho -ignore HUP env {*}$envs /bin/sh -c \
        {exec "$0" "$@" 2>"$SUBRELAY_TEST_STDERR"} {*}$bin {*}$cliargs]
    set id $spawn_id
    set timeout [expr {max(1, $o(-timeout) / 1000)}]
    set out ""
    set timed_out 0
    expect {
        -i $id
        -re {.+} { append out $expect_out(buffer); exp_continue }
        eof { append out $expect_out(buffer) }
        timeout { set timed_out 1 }
    }
    if {$timed_out} {
        catch {harness::kill KILL $spawned}
    }
    set end [expr {[clock milliseconds] + $o(-timeout)}]
    while {![harness::exited $spawned] && [clock milliseconds] < $end} {
        harness::pump 10
    }
    catch {::close -i $id}
    set st [::wait -i $id]
    if {[lindex $st 4] eq "CHILDKILLED"} {
        set code [lindex $st 5]
    } elseif {[lindex $st 2] != 0} {
        set code "error: wait failed"
    } else {
        set code [lindex $st 3]
    }
    set stderr ""
    if {[file exists $err]} {
        set f [open $err r]
        set stderr [read $f]
        ::close $f
    }
    if {$timed_out} {
        harness::fail "subrelayd $cliargs did not exit within $o(-timeout) ms\
            (stdout so far: [escape $out], stderr: [escape $stderr])"
    }
    return [dict create code $code stdout [string map [list "\r\n" "\n"] $out] \
        stderr $stderr]
}
