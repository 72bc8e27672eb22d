# run.tcl: the single test runner, one tclsh for the whole suite.
#
#   tclsh tests/run.tcl [--builddir DIR] [--verbose] [--keep]
#                       [--deadline SECONDS] [PATTERN | FILE.test ...]
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
# Files in tests/netns/ run in a private network namespace: the runner
# starts itself again under `unshare --net` (own loopback, own firewall)
# with --in-netns, so their nftables rules never touch the host. Without
# the privilege to do that they are skipped, saying why.

set srcdir [file dirname [file dirname [file normalize [info script]]]]

proc usage {{code 0}} {
    puts "usage: tclsh tests/run.tcl \[--builddir DIR\] \[--verbose\] \[--keep\]\
        \[--deadline SECONDS\] \[PATTERN|FILE.test ...\]"
    exit $code
}

set builddir ""
if {[info exists env(top_builddir)] && $env(top_builddir) ne ""} {
    set builddir $env(top_builddir)
}
set verbose 0
set in_netns 0
set keep 0
set deadline 60
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
        --deadline { set deadline [lindex $argv [incr i]] }
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

foreach f {util certs provider daemon client} {
    source [file join $srcdir tests support $f.tcl]
}

set harness::srcdir $srcdir
set harness::builddir $builddir
set harness::verbose $verbose
set harness::keep $keep
set harness::patterns $patterns
set harness::deadline_ms [expr {int($deadline * 1000)}]

set tmp /tmp
if {[info exists env(TMPDIR)] && [file isdirectory $env(TMPDIR)]} { set tmp $env(TMPDIR) }
set harness::rundir [file join [file normalize $tmp] \
    subrelay-test-[pid]-[clock seconds]]
file mkdir $harness::rundir
if {$verbose} {
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

if {![llength $files]} {
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

# Runs one file in a child runner inside a new network namespace and adds
# its counts to ours.
proc run_in_netns {f rel} {
    set why [netns_unavailable]
    if {$why ne ""} {
        incr harness::counts(skipped)
        puts "skip $rel (file) ($why)"
        return
    }
    set cmd [list unshare --net [info nameofexecutable] [info script] --in-netns \
        --builddir $::builddir --deadline [expr {$::harness::deadline_ms / 1000}]]
    if {$::verbose} { lappend cmd --verbose }
    if {$::keep} { lappend cmd --keep }
    catch {exec {*}$cmd {*}$::patterns $f 2>@1} out
    # exec appends "child process exited abnormally" when a test failed.
    set lines [split [string trimright $out] "\n"]
    set at [lsearch -regexp $lines {^\d+ passed, \d+ failed, \d+ skipped$}]
    if {$at < 0 || ![regexp {^(\d+) passed, (\d+) failed, (\d+) skipped$} [lindex $lines $at] -> p n s]} {
        incr harness::counts(failed)
        puts "FAIL $rel (file)"
        puts [harness::indent $out "    "]
        return
    }
    set rest [lreplace $lines $at $at]
    if {[llength $rest]} { puts [join $rest "\n"] }
    incr harness::counts(passed) $p
    incr harness::counts(failed) $n
    incr harness::counts(skipped) $s
}

if {![llength $files]} {
    set files [lsort [glob -nocomplain -directory [file join $srcdir tests] */*.test]]
}
foreach f $files {
    set rel [string range $f [string length $srcdir/] end]
    if {!$in_netns && [file tail [file dirname $f]] eq "netns"} {
        run_in_netns $f $rel
        flush stdout
        continue
    }
    if {[catch {uplevel #0 [list source $f]} msg opts]} {
        # An error outside any test: the file itself is broken (or skipped).
        set harness::current ""
        set name "$rel (file)"
        if {[lrange [dict get $opts -errorcode] 0 1] eq {HARNESS SKIP}} {
            if {[harness::selected $rel] || ![llength $patterns]} {
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
