# util.tcl: the harness core, sourced by tests/run.tcl before any test.
#
# Provides to test files:
#   test NAME BODY               register and run one test (now, if selected)
#   skip REASON                  end the current test as skipped
#   assert EXPR ?MSG?            EXPR evaluated in the caller's scope
#   assert_equal EXPECTED ACTUAL ?MSG?
#   assert_match PATTERN ACTUAL ?MSG?        glob, like [string match]
#   assert_regexp RE ACTUAL ?MSG?            like [regexp]
#   assert_contains NEEDLE HAYSTACK ?MSG?    substring
#   assert_not_contains NEEDLE HAYSTACK ?MSG?
#   wait_until COND ?TIMEOUT_MS? ?WHAT?      poll COND (an expr, caller's scope)
#                                            while servicing the event loop
#   pause MS                     service the event loop for MS (no condition)
#   test_deadline SECONDS        this test's deadline, from now (default 60 s)
#   testdir                      this test's private temporary directory
#   tmpfile NAME ?CONTENT? ?-binary?   path in testdir; writes CONTENT if given
#   secretfile NAME CONTENT      tmpfile with mode 0600, as a secret file must be
#   escape BYTES / hexdump BYTES make bytes readable in messages
#   utf8 STRING                  STRING encoded as UTF-8 bytes
#   bgexec CMD... / bgwait H ?TIMEOUT_MS? / bgkill H
#                                run a program in the background (stdout and
#                                stderr collected through the event loop)
# Rule: every wait is bounded (default 10 s) and also ends when the test's
# deadline (default 60 s) passes, so a hung daemon cannot hang the suite.
# Expected values come first in every assert_*.

namespace eval harness {
    variable srcdir ""
    variable builddir ""
    variable rundir ""           ;# per-run temporary directory
    variable testdir ""          ;# current test's directory
    variable current ""          ;# current test's name ("" outside tests)
    variable verbose 0
    variable keep 0
    variable patterns {}
    variable default_timeout 10000
    variable deadline_ms 60000
    variable deadline_hit 0
    variable deadline_id ""
    variable wake 0              ;# written by I/O handlers to end a wait early
    variable bgerrors {}
    variable modules {}          ;# namespaces with _cleanup/_report/_reset procs
    variable seq 0
    variable counts
    array set counts {passed 0 failed 0 skipped 0}
    variable child 0             ;# 1 in a child runner: report test starts
    variable resume_after ""     ;# skip tests up to and including this one
    variable test_file ""        ;# where the current test is defined
    variable test_line 0
}

# --- running tests -------------------------------------------------------

proc harness::register_module {ns} {
    variable modules
    if {$ns ni $modules} { lappend modules $ns }
}

proc harness::selected {name} {
    variable patterns
    if {![llength $patterns]} { return 1 }
    foreach p $patterns {
        if {[string match $p $name]} { return 1 }
    }
    return 0
}

# Evaluated in its own proc frame so test variables stay local; [eval] keeps
# Tcl's line tracking so failures can name FILE:LINE in the .test file.
proc harness::eval_body {__body} {
    eval $__body
}

proc test {name body} {
    if {$::harness::current ne ""} {
        error "test \"$name\" defined inside test \"$::harness::current\""
    }
    set f [info frame -1]
    set ::harness::test_file ""
    set ::harness::test_line 0
    if {[dict exists $f file] && [string match *.test [dict get $f file]]} {
        set ::harness::test_file [dict get $f file]
        set ::harness::test_line [dict get $f line]
    }
    harness::run_test $name $body
}

proc harness::run_test {name body} {
    variable current; variable testdir; variable rundir; variable seq
    variable deadline_ms; variable deadline_hit; variable deadline_id
    variable bgerrors; variable counts; variable verbose; variable keep
    variable child; variable resume_after
    if {$resume_after ne ""} {
        # A new child after a stuck test: the tests up to it have run.
        if {$name eq $resume_after} { set resume_after "" }
        return
    }
    if {![selected $name]} { return }
    incr seq
    regsub -all {[^A-Za-z0-9_.-]+} $name _ safe
    set testdir [file join $rundir [format %03d-%s $seq $safe]]
    file mkdir $testdir
    set current $name
    set bgerrors {}
    set deadline_hit 0
    set deadline_id [after $deadline_ms {
        set ::harness::deadline_hit 1
        set ::harness::wake deadline
    }]
    if {$child} { puts "#start\t$name\t$testdir\t$deadline_ms"; flush stdout }
    if {$verbose} { puts "== $name"; flush stdout }
    set started [clock milliseconds]

    set saved_deadline $deadline_ms
    set code [catch {eval_body $body} msg opts]
    set deadline_ms $saved_deadline

    after cancel $deadline_id
    set deadline_hit 0
    set status ok
    set detail ""
    if {$code == 1} {
        set ec [dict get $opts -errorcode]
        if {[lrange $ec 0 1] eq {HARNESS SKIP}} {
            set status skip
        } else {
            set status fail
            set detail [failure_text $msg $opts]
        }
    } elseif {$code != 0 && $code != 2} {
        set status fail
        set detail "test body ended with unexpected code $code: $msg"
    }

    # Stop what the test left running; a crash seen here fails the test.
    set problems [run_hooks _cleanup]
    update
    foreach e $bgerrors { lappend problems "background error: $e" }
    if {[llength $problems] && $status ne "fail"} {
        set status fail
        set detail ""
    }
    foreach p $problems { append detail "\n" $p }
    if {$status eq "fail"} {
        foreach r [run_hooks _report] { append detail "\n" $r }
    }
    run_hooks _reset
    foreach id [after info] { after cancel $id }

    set elapsed [expr {[clock milliseconds] - $started}]
    set suffix [expr {$verbose ? " ($elapsed ms)" : ""}]
    switch -- $status {
        ok {
            incr counts(passed)
            puts "ok $name$suffix"
        }
        skip {
            incr counts(skipped)
            puts "skip $name ($msg)"
        }
        fail {
            incr counts(failed)
            puts "FAIL $name$suffix"
            puts [indent [string trim $detail "\n"] "    "]
            puts "    test files: $testdir"
        }
    }
    flush stdout
    if {$status ne "fail" && !$keep} {
        catch {file delete -force $testdir}
    }
    set current ""
    set testdir ""
    return
}

# Calls NS::HOOK for every registered module; returns the non-empty results
# (a hook returns a list of problem texts).
proc harness::run_hooks {hook} {
    variable modules
    set out {}
    foreach ns $modules {
        set cmd ::[string trimleft $ns :]::$hook
        if {[info commands $cmd] eq ""} { continue }
        if {[catch {$cmd} res]} {
            lappend out "harness error in ${ns}::$hook: $res"
        } else {
            foreach r $res { if {$r ne ""} { lappend out $r } }
        }
    }
    return $out
}

# FILE:LINE of line REL of the current test's body as errorInfo counts it.
# Tcl turns each backslash-newline of a braced body into a space, and
# errorInfo counts lines of that string; they are counted again in the
# file, from the "test" line on.
proc harness::body_location {rel} {
    variable test_file; variable test_line
    set phys $rel
    if {![catch {open $test_file r} f]} {
        set lines [lrange [split [read $f] "\n"] [expr {$test_line - 1}] end]
        close $f
        set l 1
        set phys 0
        foreach line $lines {
            incr phys
            if {$l >= $rel} { break }
            if {![regexp {(^|[^\\])(\\\\)*\\$} $line]} { incr l }
        }
    }
    return "[relpath $test_file]:[expr {$test_line + $phys - 1}]"
}

proc harness::failure_text {msg opts} {
    variable verbose
    set ec [dict get $opts -errorcode]
    if {[lindex $ec 0] eq "HARNESS"} {
        set text $msg
    } else {
        # An unexpected error: its trace, up to the harness frames, with the
        # body-relative line turned into FILE:LINE.
        set text [dict get $opts -errorinfo]
        set re {\n *\("eval" body line ([0-9]+)\)\n *invoked from within\n"eval \$__body".*$}
        variable test_file
        if {[regexp $re $text -> rel] && $test_file ne ""} {
            regsub $re $text "" text
            set text "[body_location $rel]: $text"
        }
    }
    if {$verbose && [lindex $ec 0] eq "HARNESS"} {
        append text "\n" [dict get $opts -errorinfo]
    }
    return $text
}

proc harness::indent {text prefix} {
    set out {}
    foreach l [split $text "\n"] { lappend out "$prefix$l" }
    return [join $out "\n"]
}

# FILE:LINE in the .test file of the code running now. Frames of procs
# defined in a .test file carry the file; the test body itself runs under
# [eval] and carries lines relative to the body, which starts on the line
# of its "test" command.
proc harness::where {} {
    variable test_file; variable test_line
    for {set l [expr {[info frame] - 1}]} {$l > 0} {incr l -1} {
        set f [info frame $l]
        if {[dict exists $f file]} {
            if {[string match *.test [dict get $f file]]} {
                return "[relpath [dict get $f file]]:[dict get $f line]"
            }
            continue
        }
        if {[dict get $f type] eq "eval" && [dict exists $f line] && $test_file ne ""} {
            # [info frame] counts backslash-newlines (errorInfo does not).
            return "[relpath $test_file]:[expr {$test_line + [dict get $f line] - 1}]"
        }
    }
    return ""
}

proc harness::relpath {file} {
    variable srcdir
    if {[string first "$srcdir/" $file] == 0} {
        return [string range $file [string length "$srcdir/"] end]
    }
    return $file
}

# Raises an assertion failure located at the test file line.
proc harness::fail {text} {
    set w [where]
    if {$w ne ""} { set text "$w: $text" }
    return -level 2 -code error -errorcode {HARNESS ASSERT} $text
}

# Gives the current test SECONDS from now instead of the default deadline.
proc test_deadline {seconds} {
    after cancel $::harness::deadline_id
    set ::harness::deadline_ms [expr {int($seconds * 1000)}]
    set ::harness::deadline_id [after $::harness::deadline_ms {
        set ::harness::deadline_hit 1
        set ::harness::wake deadline
    }]
    if {$::harness::child} { puts "#deadline\t$::harness::deadline_ms"; flush stdout }
}

proc skip {reason} {
    return -code error -errorcode {HARNESS SKIP} $reason
}

proc testdir {} {
    if {$::harness::testdir eq ""} { error "testdir: not inside a test" }
    return $::harness::testdir
}

proc tmpfile {name args} {
    set binary 0
    if {[lindex $args end] eq "-binary"} {
        set binary 1
        set args [lrange $args 0 end-1]
    }
    set path [file join [testdir] $name]
    if {[llength $args]} {
        file mkdir [file dirname $path]
        set f [open $path w]
        if {$binary} {
            chan configure $f -translation binary
        } else {
            chan configure $f -encoding utf-8 -translation lf
        }
        puts -nonewline $f [lindex $args 0]
        close $f
    }
    return $path
}

# The daemon refuses a secret that others could read (secret_file.h):
# owned by the tester (root, or the user the daemon then runs as), 0600.
proc secretfile {name content} {
    set path [tmpfile $name $content]
    file attributes $path -permissions 0600
    return $path
}

proc utf8 {s} { encoding convertto utf-8 $s }

# --- making bytes readable -----------------------------------------------

# Bytes made visible: \r \n \t \\ \" and \xNN (\uNNNN above 255),
# quoted, cut after MAX characters.
proc escape {s {max 4000}} {
    set trunc ""
    if {[string length $s] > $max} {
        set trunc "... ([string length $s] chars in all)"
        set s [string range $s 0 [expr {$max - 1}]]
    }
    return "\"[harness::escape_raw $s]\"$trunc"
}

proc harness::escape_raw {s} {
    set out [string map [list "\\" "\\\\" "\r" "\\r" "\n" "\\n" "\t" "\\t" "\"" "\\\""] $s]
    if {![regexp {[\x00-\x1f\x7f-\uffff]} $out]} { return $out }
    set res ""
    foreach c [split $out ""] {
        scan $c %c n
        if {$n < 32 || ($n >= 127 && $n < 256)} {
            append res [format "\\x%02X" $n]
        } elseif {$n >= 256} {
            append res [format "\\u%04X" $n]
        } else {
            append res $c
        }
    }
    return $res
}

# Escaped text over several display lines, one per line of the data.
proc harness::show {s {prefix "            "}} {
    set trunc ""
    if {[string length $s] > 4000} {
        set trunc " ... ([string length $s] chars in all)"
        set s [string range $s 0 3999]
    }
    if {$s eq ""} { return "\"\"" }
    set parts {}
    foreach seg [regexp -all -inline {[^\n]*\n|[^\n]+} $s] {
        lappend parts "\"[escape_raw $seg]\""
    }
    return "[join $parts "\n$prefix"]$trunc"
}

proc hexdump {s} {
    set out {}
    set len [string length $s]
    for {set i 0} {$i < $len} {incr i 16} {
        set chunk [string range $s $i [expr {$i + 15}]]
        set hex ""
        set asc ""
        foreach c [split $chunk ""] {
            scan $c %c n
            append hex [format "%02x " [expr {$n & 0xff}]]
            append asc [expr {$n >= 32 && $n < 127 ? $c : "."}]
        }
        lappend out [format "%08x  %-48s |%s|" $i $hex $asc]
    }
    return [join $out "\n"]
}

# --- assertions ----------------------------------------------------------

proc assert {expr {msg ""}} {
    if {![uplevel 1 [list expr $expr]]} {
        set text "assertion failed: $expr"
        if {[catch {uplevel 1 [list subst -nobackslashes -nocommands $expr]} s] == 0 && $s ne $expr} {
            append text "\n    with values: $s"
        }
        if {$msg ne ""} { set text "$msg\n    $text" }
        harness::fail $text
    }
}

proc assert_equal {expected actual {msg ""}} {
    if {$expected eq $actual} { return }
    set i 0
    set n [expr {min([string length $expected], [string length $actual])}]
    while {$i < $n && [string index $expected $i] eq [string index $actual $i]} { incr i }
    set text "values differ"
    if {$msg ne ""} { set text "$msg: values differ" }
    append text "\n  expected: [harness::show $expected]"
    append text "\n  actual:   [harness::show $actual]"
    append text "\n  (lengths [string length $expected] and [string length $actual]; first difference at offset $i:\
        expected [escape [string range $expected $i [expr {$i + 15}]]],\
        actual [escape [string range $actual $i [expr {$i + 15}]]])"
    harness::fail $text
}

proc assert_match {pattern actual {msg ""}} {
    if {[string match $pattern $actual]} { return }
    harness::fail [harness::mismatch "does not match glob" $pattern $actual $msg]
}

proc assert_regexp {re actual {msg ""}} {
    if {[regexp -- $re $actual]} { return }
    harness::fail [harness::mismatch "does not match regexp" $re $actual $msg]
}

proc assert_contains {needle haystack {msg ""}} {
    if {[string first $needle $haystack] >= 0} { return }
    harness::fail [harness::mismatch "does not contain" $needle $haystack $msg]
}

proc assert_not_contains {needle haystack {msg ""}} {
    set i [string first $needle $haystack]
    if {$i < 0} { return }
    set text [harness::mismatch "unexpectedly contains" $needle $haystack $msg]
    append text "\n  (found at offset $i)"
    harness::fail $text
}

proc harness::mismatch {what expected actual msg} {
    set text "actual value $what the expected one"
    if {$msg ne ""} { set text "$msg: $text" }
    append text "\n  expected: [show $expected]"
    append text "\n  actual:   [show $actual]"
    return $text
}

# --- waiting -------------------------------------------------------------

# Services the event loop for at most MS milliseconds; returns early when
# an I/O handler calls harness::wakeup.
proc harness::pump {ms} {
    if {$ms < 1} { set ms 1 }
    set id [after $ms {set ::harness::wake timer}]
    vwait ::harness::wake
    after cancel $id
}

proc harness::wakeup {} {
    set ::harness::wake io
}

proc harness::check_deadline {} {
    variable deadline_hit
    if {$deadline_hit} {
        variable deadline_ms
        set text "test deadline ([format %g [expr {$deadline_ms / 1000.0}]] s) exceeded"
        set w [where]
        if {$w ne ""} { set text "$w: $text" }
        return -code error -errorcode {HARNESS DEADLINE} $text
    }
}

# The one waiting primitive: COND is an expr evaluated in the caller's scope.
proc wait_until {cond {timeout ""} {what ""}} {
    if {$timeout eq ""} { set timeout $::harness::default_timeout }
    if {$what eq ""} { set what $cond }
    set end [expr {[clock milliseconds] + $timeout}]
    while {1} {
        if {[uplevel 1 [list expr $cond]]} { return }
        harness::check_deadline
        set left [expr {$end - [clock milliseconds]}]
        if {$left <= 0} {
            set w [harness::where]
            set text "timed out after $timeout ms waiting for $what"
            if {$w ne ""} { set text "$w: $text" }
            return -code error -errorcode {HARNESS TIMEOUT} $text
        }
        harness::pump [expr {min(50, $left)}]
    }
}

proc pause {ms} {
    set end [expr {[clock milliseconds] + $ms}]
    while {[set left [expr {$end - [clock milliseconds]}]] > 0} {
        harness::check_deadline
        harness::pump $left
    }
}

# A tls::import -command callback: answers certificate checks with
# OpenSSL's verdict and hands errors to RECORD (a command prefix getting the
# message) instead of letting tcl-tls raise background errors.
proc harness::tls_callback {record kind args} {
    switch -- $kind {
        verify { return [lindex $args 3] }
        error  { if {$record ne ""} { {*}$record [lindex $args end] } }
    }
    return 1
}

proc harness::bgerror {msg opts} {
    variable bgerrors
    lappend bgerrors "$msg\n[dict get $opts -errorinfo]"
    wakeup
}
interp bgerror {} harness::bgerror

# --- processes -----------------------------------------------------------

# Linux process state letter of PID ("" when there is no such process):
# a child that exited but was not yet reaped is "Z".
proc harness::proc_state {pid} {
    if {[catch {open /proc/$pid/stat r} f]} { return "" }
    set line [read $f]
    close $f
    # The state follows the command name in parentheses.
    if {[regexp {\) (\S)} $line -> st]} { return $st }
    return ""
}

proc harness::exited {pid} {
    expr {[proc_state $pid] in {Z X ""}}
}

# Sends signal SIG (TERM, KILL...) to each PID (a negative one: its process
# group) with the shell's own kill: procps' kill(1) is not on a minimal
# Debian, and an exec that fails must not pass for a signal sent. Raises an
# error when the shell's kill fails (e.g. no such process).
proc harness::kill {sig args} {
    exec /bin/sh -c {sig=$1; shift; kill -s "$sig" -- "$@"} sh $sig {*}$args
}

# Closes a command-pipeline channel whose child has exited and returns its
# exit code, or the signal name (SIGKILL, SIGSEGV...) that ended it.
proc harness::reap {chan} {
    catch {chan configure $chan -blocking 1}
    if {[catch {close $chan} msg opts] == 0} { return 0 }
    set ec [dict get $opts -errorcode]
    switch -- [lindex $ec 0] {
        CHILDSTATUS { return [lindex $ec 2] }
        CHILDKILLED { return [lindex $ec 2] }
        NONE        { return 0 }
        default     { return "error: $msg" }
    }
}

namespace eval bgexec {
    variable seq 0
    variable B
    variable live {}
}
harness::register_module bgexec

proc bgexec {args} {
    set h bg[incr bgexec::seq]
    set ch [open |[list {*}$args < /dev/null 2>@1] r]
    chan configure $ch -blocking 0 -translation binary
    set bgexec::B($h,chan) $ch
    set bgexec::B($h,pid) [lindex [pid $ch] 0]
    set bgexec::B($h,output) ""
    set bgexec::B($h,eof) 0
    set bgexec::B($h,cmd) $args
    lappend bgexec::live $h
    fileevent $ch readable [list bgexec::readable $h]
    return $h
}

proc bgexec::readable {h} {
    variable B
    set ch $B($h,chan)
    if {[catch {read $ch} data]} { set data "" ; set B($h,eof) 1 }
    append B($h,output) $data
    if {[eof $ch]} {
        set B($h,eof) 1
        fileevent $ch readable {}
    }
    harness::wakeup
}

proc bgexec::done {h} {
    variable B
    expr {$B($h,eof) && [harness::exited $B($h,pid)]}
}

# Waits for the program to exit; returns {code CODE output TEXT}.
proc bgwait {h {timeout ""}} {
    if {[info exists bgexec::B($h,code)]} {
        return [list code $bgexec::B($h,code) output $bgexec::B($h,output)]
    }
    wait_until {[bgexec::done $h]} $timeout "exit of [lindex $bgexec::B($h,cmd) 0]"
    bgexec::finish $h
    return [list code $bgexec::B($h,code) output $bgexec::B($h,output)]
}

proc bgoutput {h} { return $bgexec::B($h,output) }

proc bgexec::finish {h} {
    variable B; variable live
    if {[info exists B($h,code)]} { return }
    catch {append B($h,output) [read $B($h,chan)]}
    set B($h,code) [harness::reap $B($h,chan)]
    set live [lsearch -all -inline -not -exact $live $h]
}

proc bgkill {h} {
    if {[info exists bgexec::B($h,code)]} { return $bgexec::B($h,code) }
    catch {harness::kill KILL $bgexec::B($h,pid)}
    set end [expr {[clock milliseconds] + 5000}]
    while {![harness::exited $bgexec::B($h,pid)] && [clock milliseconds] < $end} {
        after 10
    }
    bgexec::finish $h
    return $bgexec::B($h,code)
}

proc bgexec::_cleanup {} {
    variable live
    foreach h $live { catch {bgkill $h} }
    return {}
}

proc bgexec::_reset {} {
    variable B; variable live
    array unset B
    set live {}
}
