# common.tcl: helpers shared by tests/install/*.test (sourced by each file).
#
#   inst::make TARGET ?VAR=VALUE ...?  runs `make TARGET` in the build
#                                      directory (in the background); fails
#                                      the test with make's output unless it
#                                      exits 0 -> the output
#   inst::install ?DESTDIR?            `make install DESTDIR=...` into a new
#                                      directory of the test -> DESTDIR
#   inst::files DIR                    sorted paths of the files (and links)
#                                      under DIR, relative to it
#   inst::find DIR GLOB                the one installed file whose name
#                                      matches GLOB -> its path without DIR
#   inst::read PATH  /  inst::write PATH TEXT
#   inst::run ARGS...                  a program in the background -> dict
#                                      {code N output TEXT} (stderr included)
#   inst::unit_value TEXT KEY          the values of KEY= lines of a unit, in order
#   inst::need PROGRAM PACKAGE         skips the test when PROGRAM is missing

namespace eval inst {}

proc inst::run {args} {
    # make called from `make check` must not join its parent's jobserver.
    set env_cmd [list env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u DESTDIR]
    set h [bgexec {*}$env_cmd {*}$args]
    set r [bgwait $h 300000]
    return $r
}

proc inst::make {target args} {
    set r [run make -C $::harness::builddir $target {*}$args]
    if {[dict get $r code] != 0} {
        harness::fail "make $target $args exited [dict get $r code]:\n[dict get $r output]"
    }
    return [dict get $r output]
}

proc inst::install {{dest ""}} {
    if {$dest eq ""} { set dest [file join [testdir] root] }
    make install DESTDIR=$dest
    return $dest
}

proc inst::files {dir} {
    set out {}
    set todo [list $dir]
    while {[llength $todo]} {
        set d [lindex $todo 0]
        set todo [lrange $todo 1 end]
        foreach p [glob -nocomplain -directory $d * .*] {
            set t [file tail $p]
            if {$t eq "." || $t eq ".."} { continue }
            if {[file type $p] eq "directory"} {
                lappend todo $p
            } else {
                lappend out [string range $p [string length $dir] end]
            }
        }
    }
    return [lsort $out]
}

proc inst::find {dir pattern} {
    set hits [lsearch -all -inline -glob [files $dir] */$pattern]
    if {[llength $hits] != 1} {
        harness::fail "expected one installed file matching $pattern, found: $hits\nin: [files $dir]"
    }
    return [lindex $hits 0]
}

proc inst::read {path} {
    set f [open $path r]
    set text [::read $f]
    close $f
    return $text
}

proc inst::write {path text} {
    set f [open $path w]
    puts -nonewline $f $text
    close $f
}

proc inst::unit_value {text key} {
    set out {}
    foreach line [split $text "\n"] {
        if {[regexp "^$key=(.*)\$" $line -> v]} { lappend out $v }
    }
    return $out
}

proc inst::need {program package} {
    if {[auto_execok $program] eq ""} { skip "$program is not installed (Debian package $package)" }
}
