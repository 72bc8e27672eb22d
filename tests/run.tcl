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
        --deadline { set deadline [lindex $argv [incr i]] }
        --help - -h { usage }
        -* { puts stderr "run.tcl: unknown option $a"; usage 99 }
        *.test {
            if {![file exists $a]} { puts stderr "run.tcl: no such file $a"; exit 99 }
            lappend files [file normalize $a]
        }
        default { lappend patterns $a }
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

if {![llength $files]} {
    set files [lsort [glob -nocomplain -directory [file join $srcdir tests] */*.test]]
}
foreach f $files {
    set rel [string range $f [string length $srcdir/] end]
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
