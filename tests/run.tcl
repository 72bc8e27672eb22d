# run.tcl: the single test runner, one tclsh for the whole suite.
#
#   tclsh tests/run.tcl [--builddir DIR] [--verbose] [--keep]
#                       [--deadline SECONDS] [--grace SECONDS]
#                       [PATTERN | FILE.test ...]
#
# Runs the C unit test programs ($builddir/tests/c/test_*, one test each,
# named c/test_NAME: exit 0 passes, 77 skips, anything else fails) and then
# sources every tests/*/*.test file in sorted order. PATTERN selects tests
# by name (glob); a path ending in .test selects that file only.
# Prints "ok NAME", "FAIL NAME" (with the error and the daemon logs) or
# "skip NAME (reason)" per test, then "N passed, N failed, N skipped".
# Exit status: 0 when nothing failed, 1 otherwise (99: the runner itself
# could not start). Each test gets a fresh directory under a per-run
# directory in $TMPDIR (or /tmp), removed at the end unless a test failed.
#
# Each test file runs in a child runner (this script again, with --child,
# in a process group of its own), which this one supervises: a test that
# runs past its deadline plus a grace (for its cleanup) is killed with
# everything it started, reported as FAIL with its daemons' logs, and the
# file goes on after it in a new child. So a test stuck in a call that no
# deadline can interrupt (a blocking read, a wait for a process) fails
# instead of hanging the suite. Files in tests/netns/ run their child in a
# private network namespace (`unshare --net`, own loopback, own firewall),
# so their nftables rules never touch the host. Without the privilege to
# do that they are skipped, saying why.

set srcdir [file dirname [file dirname [file normalize [info script]]]]

proc usage {{code 0}} {
    puts "usage: tclsh tests/run.tcl \[--builddir DIR\] \[--verbose\] \[--keep\]\
        \[--deadline SECONDS\] \[--grace SECONDS\] \[PATTERN|FILE.test ...\]"
    exit $code
}

set builddir ""
if {[info exists env(top_builddir)] && $env(top_builddir) ne ""} {
    set builddir $env(top_builddir)
}
set verbose 0
set in_netns 0
set child 0
set child_rundir ""
set certs_dir ""
set resume_after ""
set keep 0
set deadline 60
set grace 60
set patterns {}
set files {}
for {set i 0} {$i < $argc} {incr i} {
    set a [lindex $argv $i]
    switch -glob -- $a {
        --builddir { set builddir [lindex $argv [incr i]] }
        --builddir=* { set builddir [string range $a 11 end] }
        --verbose - -v { set verbose 1 }
        --keep { set keep 1 }
        --in-netns { set in_netns 1 }
        --child { set child 1 }
        --rundir { set child_rundir [lindex $argv [incr i]] }
        --certs { set certs_dir [lindex $argv [incr i]] }
        --after { set resume_after [lindex $argv [incr i]] }
        --deadline { set deadline [lindex $argv [incr i]] }
        --grace { set grace [lindex $argv [incr i]] }
        --help - -h { usage }
        -* { puts stderr "run.tcl: unknown option $a"; usage 99 }
        *.test {
            if {![file exists $a]} { puts stderr "run.tcl: no such file $a"; exit 99 }
            lappend files [file normalize $a]
        }
        default {
            if {[file isdirectory $a]} {
                lappend files {*}[lsort [glob -nocomplain -directory [file normalize $a] *.test]]
            } else {
                lappend patterns $a
            }
        }
    }
}
if {$builddir eq ""} { set builddir $srcdir }
set builddir [file normalize $builddir]

if {[catch {
    package require Tcl 8.6
    package require tls
    package require Expect
} err]} {
    puts stderr "run.tcl: $err (the harness needs Tcl 8.6, tcl-tls and Expect)"
    exit 99
}
log_user 0
if {$in_netns && [catch {exec ip link set lo up} err]} {
    puts stderr "run.tcl: cannot bring up loopback in the namespace: $err"
    exit 99
}

foreach f {util certs provider oauth2 daemon client} {
    source [file join $srcdir tests support $f.tcl]
}

set harness::srcdir $srcdir
set harness::builddir $builddir
set harness::verbose $verbose
set harness::keep $keep
set harness::patterns $patterns
set harness::deadline_ms [expr {int($deadline * 1000)}]
set harness::child $child
set harness::resume_after $resume_after

if {$child_rundir ne ""} {
    set harness::rundir $child_rundir
} else {
    set tmp /tmp
    if {[info exists env(TMPDIR)] && [file isdirectory $env(TMPDIR)]} { set tmp $env(TMPDIR) }
    set harness::rundir [file join [file normalize $tmp] \
        subrelay-test-[pid]-[clock seconds]]
}
file mkdir $harness::rundir
if {$certs_dir ne ""} { set certs::parent $certs_dir }
if {$verbose && !$child} {
    puts "# srcdir $srcdir, builddir $builddir, run dir $harness::rundir"
}

# --- C unit test programs -------------------------------------------------

proc run_c_test {path} {
    set h [bgexec $path]
    set r [bgwait $h [expr {$::harness::deadline_ms - 1000}]]
    set code [dict get $r code]
    if {$code == 77} {
        set why [string trim [lindex [split [string trim [dict get $r output]] "\n"] end]]
        skip [expr {$why eq "" ? "exit status 77" : $why}]
    }
    if {$code != 0} {
        error "[file tail $path] exited with status $code; output:\n[dict get $r output]" \
            "" {HARNESS CTEST}
    }
    if {$::harness::verbose} { puts -nonewline [dict get $r output] }
}

if {!$child && ![llength $files]} {
    foreach path [lsort [glob -nocomplain -directory [file join $builddir tests c] test_*]] {
        if {![file isfile $path] || ![file executable $path]} { continue }
        if {[string first . [file tail $path]] >= 0} { continue }
        test c/[file tail $path] [list run_c_test $path]
    }
}

# --- Tcl test files -------------------------------------------------------

# Why tests/netns/ cannot run here, or "" when it can.
proc netns_unavailable {} {
    if {[catch {exec unshare --net true} err]} {
        return "cannot create a network namespace (needs root and util-linux unshare):\
            [lindex [split $err "\n"] 0]"
    }
    foreach tool {nft ip} {
        if {[auto_execok $tool] eq ""} { return "$tool is not installed" }
    }
    return ""
}

# In a child runner: sources the files given, as the parent asked.
proc source_files {files} {
    foreach f $files {
        set rel [string range $f [string length $::srcdir/] end]
        if {[catch {uplevel #0 [list source $f]} msg opts]} {
            # An error outside any test: the file itself is broken (or skipped).
            set harness::current ""
            set name "$rel (file)"
            if {[lrange [dict get $opts -errorcode] 0 1] eq {HARNESS SKIP}} {
                if {[harness::selected $rel] || ![llength $::patterns]} {
                    incr harness::counts(skipped)
                    puts "skip $name ($msg)"
                }
            } else {
                incr harness::counts(failed)
                puts "FAIL $name"
                puts [harness::indent [dict get $opts -errorinfo] "    "]
            }
            flush stdout
        }
    }
}

# --- the supervisor: one child runner per file ----------------------------

namespace eval super {
    variable grace_ms 60000   ;# after a test's deadline: its cleanup's time (--grace)
    variable seq 0
    variable S
}

proc super::note_result {line} {
    variable S
    if {[regexp {^(ok|FAIL|skip) } $line -> what]} {
        incr ::harness::counts([dict get {ok passed FAIL failed skip skipped} $what])
        set S(current) ""
    }
}

proc super::readable {} {
    variable S
    while {[gets $S(chan) line] >= 0} {
        set now [clock milliseconds]
        if {[string match "#start\t*" $line]} {
            lassign [split $line "\t"] -> S(current) S(testdir) deadline_ms
            set S(started) $now
            set S(limit) [expr {$now + $deadline_ms + $super::grace_ms}]
        } elseif {[string match "#deadline\t*" $line]} {
            set S(limit) [expr {$now + [lindex [split $line "\t"] 1] + $super::grace_ms}]
        } elseif {[regexp {^\d+ passed, \d+ failed, \d+ skipped$} $line]} {
            set S(summary) 1
        } elseif {![string match "test files kept in *" $line]} {
            note_result $line
            puts $line
        }
    }
    if {[eof $S(chan)]} {
        fileevent $S(chan) readable {}
        set S(eof) 1
    }
    set S(wake) 1
}

# The tail of each log the stuck test left (its daemons' output).
proc super::logs {dir} {
    set out ""
    foreach f [lsort [glob -nocomplain -directory $dir *.log]] {
        if {[catch {open $f r} ch]} { continue }
        set lines [split [string trimright [read $ch] "\n"] "\n"]
        close $ch
        if {[llength $lines] > 80} {
            set lines [list "... [expr {[llength $lines] - 80}] earlier lines" {*}[lrange $lines end-79 end]]
        }
        append out "\n--- [file tail $f] ---\n[join $lines "\n"]\n--- end of [file tail $f] ---"
    }
    return $out
}

# Reports the test the child was running when it was killed or died.
proc super::fail_current {why} {
    variable S
    incr ::harness::counts(failed)
    puts "FAIL $S(current)"
    set detail "$why[logs $S(testdir)]\ntest files: $S(testdir)"
    puts [harness::indent $detail "    "]
    flush stdout
}

# Runs FILE's tests (those after AFTER, if given) in a child runner.
# Returns the name of a test that did not end (killed or crashed), for the
# caller to go on after it; "" once the child is done with the file.
proc super::run_child {f netns after} {
    variable S; variable seq
    array unset S
    array set S {current "" testdir "" summary 0 eof 0 wake 0 limit 0 started 0}
    set dir [file join $::harness::rundir f[incr seq]]
    set cmd [list setsid]
    if {$netns} { lappend cmd unshare --net }
    lappend cmd [info nameofexecutable] [info script] --child --rundir $dir \
        --certs [file join $::harness::rundir certs] --builddir $::builddir \
        --deadline [expr {$::harness::deadline_ms / 1000.0}]
    if {$netns} { lappend cmd --in-netns }
    if {$::verbose} { lappend cmd --verbose }
    if {$::keep} { lappend cmd --keep }
    if {$after ne ""} { lappend cmd --after $after }
    set S(chan) [open |[list {*}$cmd {*}$::patterns $f < /dev/null 2>@1] r]
    set pid [lindex [pid $S(chan)] 0]
    chan configure $S(chan) -blocking 0 -translation binary
    fileevent $S(chan) readable super::readable
    while {!$S(eof)} {
        set id [after 1000 {set super::S(wake) 1}]
        vwait super::S(wake)
        after cancel $id
        if {$S(current) ne "" && [clock milliseconds] > $S(limit)} {
            # The child is stuck: it and everything it started go.
            catch {harness::kill KILL -$pid}
            catch {close $S(chan)}
            set secs [expr {([clock milliseconds] - $S(started)) / 1000}]
            fail_current "the test ran for $secs s, past its deadline and a [expr {$super::grace_ms / 1000}] s\
                grace, without ending: the runner was stuck (a call no deadline interrupts) and was killed"
            return $S(current)
        }
    }
    chan configure $S(chan) -blocking 1
    set status [harness::reap $S(chan)]
    # Daemons the child left behind (it died) go with it.
    catch {harness::kill KILL -$pid}
    if {$S(current) ne ""} {
        fail_current "the test runner died during the test (exit status $status)"
        return $S(current)
    }
    if {!$S(summary)} {
        incr ::harness::counts(failed)
        set rel [string range $f [string length $::srcdir/] end]
        puts "FAIL $rel (file)"
        puts "    the test runner ended without a summary (exit status $status)"
    }
    return ""
}

proc super::run_file {f netns} {
    set after ""
    while {[set after [run_child $f $netns $after]] ne ""} {}
    flush stdout
}

set super::grace_ms [expr {int($grace * 1000)}]
if {![llength $files]} {
    set files [lsort [glob -nocomplain -directory [file join $srcdir tests] */*.test]]
}
if {$child} {
    source_files $files
} else {
    foreach f $files {
        set rel [string range $f [string length $srcdir/] end]
        set netns [expr {[file tail [file dirname $f]] eq "netns"}]
        if {$netns && [set why [netns_unavailable]] ne ""} {
            incr harness::counts(skipped)
            puts "skip $rel (file) ($why)"
            continue
        }
        super::run_file $f $netns
    }
}

# --- summary --------------------------------------------------------------

set n_fail $harness::counts(failed)
if {$n_fail == 0 && !$keep} {
    file delete -force $harness::rundir
} else {
    puts "test files kept in $harness::rundir"
}
puts "$harness::counts(passed) passed, $n_fail failed, $harness::counts(skipped) skipped"
flush stdout
exit [expr {$n_fail ? 1 : 0}]
